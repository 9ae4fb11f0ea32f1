//! The space reserve: room kept beside the embedded database so that
//! deletes and garbage collection work on a full disk.

use std::sync::Arc;

use crate::error::storage_full;
use crate::error::FaultOf;
use crate::reserve::SpaceReserve;
use crate::{Fault, RegistryError};

use super::Registry;

type Result<T> = std::result::Result<T, RegistryError>;

impl Registry {
    /// Keep a space reserve on the database's disk (the embedded default),
    /// given up for deletes when the disk is full.
    pub fn with_reserve(mut self, reserve: SpaceReserve) -> Self {
        self.reserve = Some(Arc::new(reserve));
        self
    }

    /// Run an operation that frees space (a delete, a collection): when it
    /// meets a full disk, give the space reserve up and run it once more.
    pub(crate) async fn freeing<T, E, Fut>(
        &self,
        mut op: impl FnMut() -> Fut,
    ) -> std::result::Result<T, E>
    where
        E: FaultOf,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
    {
        match op().await {
            Err(e) if e.fault_of() == Some(Fault::StorageFull) && self.release_reserve().await => {
                op().await
            }
            other => other,
        }
    }

    async fn release_reserve(&self) -> bool {
        let Some(reserve) = self.reserve.clone() else {
            return false;
        };
        tokio::task::spawn_blocking(move || reserve.release())
            .await
            .unwrap_or(false)
    }

    /// Write the space reserve again if it was given up and there is room
    /// now (after a collection, and periodically).
    pub async fn restore_reserve(&self) {
        let Some(reserve) = self.reserve.clone() else {
            return;
        };
        let was_released = reserve.is_released();
        match tokio::task::spawn_blocking(move || reserve.restore()).await {
            Ok(Ok(true)) if was_released => {
                tracing::info!("space is free again: uploads are accepted")
            }
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not write the space reserve"),
            Err(e) => tracing::error!(error = %e, "writing the space reserve panicked"),
        }
    }

    /// Refuse to store more while the space reserve is given up: the room
    /// is for deletes.
    pub(super) fn check_room(&self) -> Result<()> {
        match &self.reserve {
            Some(r) if r.is_released() => Err(storage_full(
                "storage is full: space is being kept for deletes; delete images or tags and run garbage collection",
            )),
            _ => Ok(()),
        }
    }
}
