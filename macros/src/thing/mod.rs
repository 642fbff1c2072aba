//! `#[derive(Thing)]`: parse the attributes into the intermediate representation (`ast`), check
//! the rules that span several keys or fields, then generate the `Thing` impl from the
//! representation only.

mod ast;
mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use crate::ctxt::Errors;

pub fn derive(input: &DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let thing = parse::parse(input, &mut errors);
    if let Some(thing) = &thing {
        check::check(thing, &mut errors);
    }
    match (thing, errors.finish()) {
        (Some(thing), Ok(())) => expand::implementation(&thing),
        (_, Err(error)) => {
            let error = error.into_compile_error();
            let stub = expand::stub(input);
            quote! { #error #stub }
        }
        (None, Ok(())) => unreachable!("parse reports why it produced nothing"),
    }
}
