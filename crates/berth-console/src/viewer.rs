//! Who is looking at a console page.

use berth_core::access::Principal;

/// The signed-in user of a console request.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub principal: Principal,
    pub csrf: String,
    /// The session cookie (a password change keeps this session).
    pub cookie: String,
}

impl Viewer {
    pub fn name(&self) -> &str {
        self.principal.name()
    }
}
