//! Procedural macros for [`labthings`](https://docs.rs/labthings): `#[derive(Thing)]`.
//!
//! This crate only turns syntax into calls of the framework's API (`labthings::__private`); it
//! holds no runtime logic. The derive is a pipeline, one file a stage:
//! `attr` parses attributes into typed values with their spans, `ast` is the intermediate
//! representation, `check` applies the rules that span several fields, and `expand`
//! generates code from the representation only.

mod ast;
mod attr;
mod check;
mod expand;

use proc_macro::TokenStream;

/// Implements `labthings::Thing` for a struct with named fields.
///
/// See the `labthings` crate documentation for the attributes (`#[thing(...)]`,
/// `#[property(...)]`, `#[setting(...)]`, `#[stream(...)]`).
#[proc_macro_derive(Thing, attributes(thing, property, setting, stream))]
pub fn derive_thing(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).into()
}
