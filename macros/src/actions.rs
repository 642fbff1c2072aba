//! `#[thing_actions]`: every `&self` method of an impl block becomes an action.
//!
//! Parsing produces an [`Action`] per method (its arguments split into the input and the
//! optional `ActionContext`, its return type split into output and error); expansion generates
//! an input struct per action and a `ThingActions` impl that builds the descriptors.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::attr::Errors;

struct Action<'a> {
    method: &'a syn::Ident,
    name: String,
    title: Option<String>,
    description: Option<String>,
    asyncness: bool,
    lock: bool,
    inputs: Vec<Input<'a>>,
    /// Where the `ActionContext` goes among the arguments, if the method takes one.
    arguments: Vec<Argument<'a>>,
    returns: Returns<'a>,
}

struct Input<'a> {
    name: &'a syn::Ident,
    ty: &'a Type,
}

enum Argument<'a> {
    Input(&'a syn::Ident),
    Context,
}

enum Returns<'a> {
    Nothing,
    Value(&'a Type),
    Result { ok: &'a Type },
}

pub fn thing_actions(args: TokenStream, item: &mut ItemImpl) -> TokenStream {
    let mut errors = Errors::default();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            &args,
            "`#[thing_actions]` takes no arguments",
        ));
    }
    if !item.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "`#[thing_actions]` works on the impl block of a concrete type",
        ));
    }
    let mut actions = Vec::new();
    // Take our `#[action(...)]` attributes off the methods before parsing, so the methods
    // compile as written.
    let mut options = Vec::new();
    for impl_item in &mut item.items {
        if let ImplItem::Fn(method) = impl_item {
            options.push(take_options(method, &mut errors));
        }
    }
    let mut options = options.into_iter();
    for impl_item in &item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let (skip, rename, lock) = options.next().unwrap_or_default();
        if skip || !takes_ref_self(method) {
            continue;
        }
        if let Some(action) = parse(method, rename, lock, &mut errors) {
            actions.push(action);
        }
    }
    let self_ty = &item.self_ty;
    let error = errors.finish().err();
    // With errors, an impl with no actions keeps the rest of the code compiling, so the user
    // sees the attribute errors and nothing that follows from them.
    let descriptors: Vec<TokenStream> = match &error {
        Some(_) => Vec::new(),
        None => actions.iter().map(expand).collect(),
    };
    let error = error.map(syn::Error::into_compile_error);
    quote! {
        #item
        #error
        const _: () = {
            #[automatically_derived]
            impl ::labthings::action::ThingActions for #self_ty {
                fn actions() -> ::std::vec::Vec<::labthings::action::ActionDescriptor<Self>> {
                    let mut actions = ::std::vec::Vec::new();
                    #(#descriptors)*
                    actions
                }
            }
        };
    }
}

/// Reads and removes `#[action(skip | rename = "..." | lock)]`.
fn take_options(
    method: &mut ImplItemFn,
    errors: &mut Errors,
) -> (bool, Option<(String, Span)>, bool) {
    let (mut skip, mut rename, mut lock) = (false, None, false);
    method.attrs.retain(|attr| {
        if !attr.path().is_ident("action") {
            return true;
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                skip = true;
            } else if meta.path.is_ident("lock") {
                lock = true;
            } else if meta.path.is_ident("rename") {
                let lit: syn::LitStr = meta.value()?.parse()?;
                rename = Some((lit.value(), lit.span()));
            } else {
                return Err(meta.error("unknown key; the keys are `skip`, `rename`, `lock`"));
            }
            Ok(())
        });
        if let Err(error) = result {
            errors.push(error);
        }
        false
    });
    (skip, rename, lock)
}

fn takes_ref_self(method: &ImplItemFn) -> bool {
    matches!(
        method.sig.inputs.first(),
        Some(FnArg::Receiver(receiver))
            if matches!(receiver.kind, syn::ReceiverKind::Reference(_, _, None))
    )
}

fn parse<'a>(
    method: &'a ImplItemFn,
    rename: Option<(String, Span)>,
    lock: bool,
    errors: &mut Errors,
) -> Option<Action<'a>> {
    let (name, name_span) =
        rename.unwrap_or_else(|| (method.sig.ident.to_string(), method.sig.ident.span()));
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        errors.push(syn::Error::new(
            name_span,
            format!("`{name}` cannot be an action name: use letters, digits, `_` and `-` only"),
        ));
    }
    if !method.sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &method.sig.generics,
            "actions cannot be generic",
        ));
        return None;
    }
    let mut inputs = Vec::new();
    let mut arguments = Vec::new();
    for input in method.sig.inputs.iter().skip(1) {
        let FnArg::Typed(typed) = input else { continue };
        if is_context(&typed.ty) {
            arguments.push(Argument::Context);
            continue;
        }
        let Pat::Ident(ident) = &*typed.pat else {
            errors.push(syn::Error::new_spanned(
                &typed.pat,
                "action arguments must be plain names: they become the input's fields",
            ));
            continue;
        };
        inputs.push(Input {
            name: &ident.ident,
            ty: &typed.ty,
        });
        arguments.push(Argument::Input(&ident.ident));
    }
    let returns = match &method.sig.output {
        ReturnType::Default => Returns::Nothing,
        ReturnType::Type(_, ty) => match result_ok(ty) {
            Some(ok) => Returns::Result { ok },
            None => Returns::Value(ty),
        },
    };
    let (title, description) = docs(&method.attrs);
    Some(Action {
        method: &method.sig.ident,
        name,
        title,
        description,
        asyncness: method.sig.asyncness.is_some(),
        lock,
        inputs,
        arguments,
        returns,
    })
}

/// An argument of type `ActionContext` (by its last path segment) is the context, not input.
fn is_context(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == "ActionContext"))
}

/// `Result<T, E>` (by its last path segment): `T`.
fn result_ok(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(ok) => Some(ok),
        _ => None,
    }
}

fn expand(action: &Action<'_>) -> TokenStream {
    let method = action.method;
    let name = &action.name;
    let input_struct = format_ident!("__LabthingsInput_{}", method);
    let input_title = format!("{name}_input");
    let fields = action.inputs.iter().map(|input| {
        let (field, ty) = (input.name, input.ty);
        quote_spanned! {ty.span()=> #field: #ty }
    });
    let field_names: Vec<_> = action.inputs.iter().map(|input| input.name).collect();
    let call_args = action.arguments.iter().map(|argument| match argument {
        Argument::Input(name) => quote!(#name),
        Argument::Context => quote!(context.clone()),
    });
    let call = if action.asyncness {
        quote! { thing.#method(#(#call_args),*).await }
    } else {
        quote! {
            ::labthings::__private::blocking(move || thing.#method(#(#call_args),*)).await
        }
    };
    let (output_ty, convert) = match &action.returns {
        Returns::Nothing => (
            quote!(()),
            quote! { { #call; ::labthings::__private::output(()) } },
        ),
        Returns::Value(ty) => (
            quote!(#ty),
            quote! { ::labthings::__private::output(#call) },
        ),
        Returns::Result { ok } => (
            quote!(#ok),
            quote! { ::labthings::__private::result_output(#call) },
        ),
    };
    let title = option_str(action.title.as_deref());
    let description = option_str(action.description.as_deref());
    let lock = action.lock;
    quote! {
        {
            #[allow(non_camel_case_types)]
            #[derive(::labthings::__private::serde::Deserialize, ::labthings::__private::schemars::JsonSchema)]
            #[serde(crate = "::labthings::__private::serde", deny_unknown_fields)]
            #[schemars(crate = "::labthings::__private::schemars", title = #input_title)]
            struct #input_struct { #(#fields),* }

            let mut action = ::labthings::action::ActionDescriptor::<Self>::new(
                #name,
                ::labthings::__private::json_schema_of::<#input_struct>,
                ::labthings::__private::output_schema::<#output_ty>,
                |thing: ::std::sync::Arc<Self>, input: ::labthings::__private::Value| {
                    let #input_struct { #(#field_names),* } =
                        ::labthings::__private::parse_input::<#input_struct>(input)?;
                    ::core::result::Result::Ok(::std::boxed::Box::new(
                        move |context: ::labthings::action::ActionContext| -> ::labthings::action::ActionRun {
                            let _ = &context;
                            ::std::boxed::Box::pin(async move { #convert })
                        },
                    ))
                },
            );
            action.title = #title;
            action.description = #description;
            action.lock = #lock;
            actions.push(action);
        }
    }
}

fn option_str(text: Option<&str>) -> TokenStream {
    match text {
        Some(text) => quote!(::core::option::Option::Some(#text)),
        None => quote!(::core::option::Option::<&'static str>::None),
    }
}

fn docs(attrs: &[syn::Attribute]) -> (Option<String>, Option<String>) {
    crate::attr::docs(attrs)
}
