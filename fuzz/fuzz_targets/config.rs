//! Configuration files: any text is either a valid configuration or a
//! readable error, never a panic; what validates prints (with secrets
//! redacted) without panicking either.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    let env: [(String, String); 0] = [];
    match berth::Config::parse(Some(s), env) {
        Ok(config) => {
            let _ = format!("{config:?}");
            for secret in [&config.database.url, &config.admin_password].into_iter().flatten() {
                assert_eq!(format!("{secret:?}"), "[redacted]");
            }
        }
        Err(e) => assert!(!format!("{e:#}").is_empty()),
    }
});
