//! Code-generation helpers both macros use.

use proc_macro2::TokenStream;
use quote::quote;

/// `Some("text")` or `None::<&'static str>`, as tokens.
pub fn option_str(text: Option<&str>) -> TokenStream {
    match text {
        Some(text) => quote!(::core::option::Option::Some(#text)),
        None => quote!(::core::option::Option::<&'static str>::None),
    }
}
