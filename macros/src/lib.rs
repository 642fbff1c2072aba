//! Procedural macros for [`labthings`](https://docs.rs/labthings): `#[derive(Thing)]`.
//!
//! This crate only turns syntax into calls of the framework's API (`labthings::__private`); it
//! holds no runtime logic. Both macros share one front end, as serde_derive does:
//!
//! | module | what |
//! |---|---|
//! | `ctxt` | the error collector: every mistake is reported, each at its span |
//! | `names` | the naming rules (URL-safe names, names the server reserves) and doc comments |
//! | `symbol` | every attribute key, used both to parse and in "unknown key" messages |
//! | `expand` | small code-generation helpers |
//! | `thing/` | `#[derive(Thing)]`: `parse` -> `ast` -> `check` -> `expand` |
//! | `actions/` | `#[thing_actions]`: `parse` -> `ast` -> `check` -> `expand` |

mod actions;
mod ctxt;
mod expand;
mod names;
mod symbol;
mod thing;

use proc_macro::TokenStream;

/// Implements `labthings::Thing` for a struct with named fields.
///
/// See the `labthings` crate documentation for the attributes (`#[thing(...)]`,
/// `#[property(...)]`, `#[setting(...)]`, `#[stream(...)]`, `#[event(...)]`).
#[proc_macro_derive(Thing, attributes(thing, property, setting, stream, event, health))]
pub fn derive_thing(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    thing::derive(&input).into()
}

/// Makes every `&self` method of an impl block an action of the Thing (see the `labthings`
/// crate documentation, module `action`).
#[proc_macro_attribute]
pub fn thing_actions(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut item = syn::parse_macro_input!(item as syn::ItemImpl);
    actions::thing_actions(args.into(), &mut item).into()
}

/// Makes a struct or enum usable as a property value with one line: derives `Serialize`,
/// `Deserialize` and `JsonSchema` through labthings' own re-exports, so the crate using it needs
/// neither serde nor schemars as a dependency. `#[serde(...)]` and `#[schemars(...)]` attributes
/// on the type and its fields work as usual.
#[proc_macro_attribute]
pub fn data(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        let args = proc_macro2::TokenStream::from(args);
        return syn::Error::new_spanned(args, "`#[labthings::data]` takes no arguments")
            .into_compile_error()
            .into();
    }
    let item = proc_macro2::TokenStream::from(item);
    quote::quote! {
        #[derive(
            ::labthings::__private::serde::Serialize,
            ::labthings::__private::serde::Deserialize,
            ::labthings::__private::schemars::JsonSchema,
        )]
        #[serde(crate = "::labthings::__private::serde")]
        #[schemars(crate = "::labthings::__private::schemars")]
        #item
    }
    .into()
}
