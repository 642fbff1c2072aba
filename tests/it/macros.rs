//! `#[derive(Thing)]`: what compiles, and the error for each mistake (tests/ui).

#[test]
fn derive_thing_ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
