//! `#[thing_actions]`: every `&self` method of an impl block becomes an action. Parse the
//! methods into the intermediate representation (`ast`), check the rules across actions, then
//! generate one library constructor call per action.

mod ast;
mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemImpl;

use crate::ctxt::Errors;

pub fn thing_actions(args: TokenStream, item: &mut ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            &args,
            "`#[thing_actions]` takes no arguments",
        ));
    }
    if let Some(span) = parse::generics_span(item) {
        errors.at(
            span,
            "`#[thing_actions]` works on the impl block of a concrete type",
        );
    }
    let options = parse::take_options(item, &mut errors);
    let item = &*item;
    let actions = parse::parse(item, options, &mut errors);
    check::check(&actions, &mut errors);
    let self_ty = &item.self_ty;
    match errors.finish() {
        Ok(()) => {
            let implementation = expand::implementation(self_ty, &actions);
            quote! { #item #implementation }
        }
        Err(error) => {
            // An impl with no actions keeps the rest of the code compiling, so the user sees
            // the errors and nothing that follows from them.
            let error = error.into_compile_error();
            let implementation = expand::implementation(self_ty, &[]);
            quote! { #item #error #implementation }
        }
    }
}
