//! `#[derive(Thing)]`: what compiles, and the error for each mistake (tests/ui).

#[test]
fn derive_thing_ui() {
    // Compiling the cases takes both cores for minutes: not beside the load tests.
    let _heavy = crate::support::HEAVY.blocking_lock();
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
