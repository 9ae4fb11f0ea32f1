//! Token scopes from `/auth/token?scope=…` (one per line): parsing never
//! panics, and intersecting with rights never grants an action that was
//! not asked for (by name or by `*`) or that the rights do not include.
#![no_main]
use berth_core::access::Actions;
use berth_core::token::ResourceScope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    for scope in ResourceScope::parse_all(s.lines()) {
        let asked = |a: &str| scope.actions.iter().any(|x| x == a || x == "*");
        let rights = Actions { pull: true, push: false, delete: true };
        let kept = scope.intersect(rights);
        for a in &kept.actions {
            assert!(asked(a), "{a} granted but not asked in {scope:?}");
            assert!(a == "pull" || a == "delete", "{a} granted without the right");
        }
        assert!(scope.intersect(Actions::default()).actions.is_empty());
    }
});
