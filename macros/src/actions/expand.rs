//! Code generation for `#[thing_actions]`, from the intermediate representation only: an input
//! struct per action and one library constructor call, which holds the whole run protocol.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use super::ast::{Action, Argument, Execution, Lock, Returns};
use crate::expand::option_str;

/// The `ThingActions` impl with a descriptor per action (none when there were errors).
pub fn implementation(self_ty: &syn::Type, actions: &[Action<'_>]) -> TokenStream {
    let descriptors = actions.iter().map(descriptor);
    quote! {
        const _: () = {
            #[automatically_derived]
            impl ::labthings::__private::ThingActions for #self_ty {
                fn actions() -> ::std::vec::Vec<::labthings::__private::ActionDescriptor<Self>> {
                    let mut actions = ::std::vec::Vec::new();
                    #(#descriptors)*
                    actions
                }
            }
        };
    }
}

fn descriptor(action: &Action<'_>) -> TokenStream {
    let method = action.method;
    let name = &action.name;
    let input_struct = format_ident!("__LabthingsInput_{}", method);
    let input_title = format!("{name}_input");
    // Each argument is wrapped (`Option`'s content, so that a left-out optional argument stays
    // allowed) in an `Arg` whose impls hold for any type, so that a type that cannot be an
    // argument is one error of ours (`assert_argument`, at the type), not one per place serde's
    // and schemars' derives use the field. A type per argument reaches its own impls.
    let mut sources = Vec::new();
    let fields: Vec<_> = action
        .inputs
        .iter()
        .map(|input| {
            let (field, ty) = (input.name, input.ty);
            let inner = input.option_of.unwrap_or(ty);
            let source = format_ident!("__LabthingsArg_{}", field);
            sources.push(quote_spanned! {inner.span()=>
                ::labthings::__private::assert_argument::<#inner>();
                #[allow(non_camel_case_types)]
                enum #source {}
                impl ::labthings::__private::ArgSource for #source {
                    type Value = #inner;
                    fn deserialize<'de, D: ::labthings::__private::serde::Deserializer<'de>>(
                        deserializer: D,
                    ) -> ::core::result::Result<#inner, D::Error> {
                        #[allow(unused_imports)]
                        use ::labthings::__private::{CheckedArg as _, UncheckedArg as _};
                        (&::labthings::__private::ArgProbe::<#inner>::new()).deserialize(deserializer)
                    }
                    fn schema() -> ::labthings::__private::ArgSchema {
                        #[allow(unused_imports)]
                        use ::labthings::__private::{CheckedArg as _, UncheckedArg as _};
                        (&::labthings::__private::ArgProbe::<#inner>::new()).schema()
                    }
                }
            });
            let attrs = &input.attrs;
            let unit = attrs
                .unit
                .as_deref()
                .map(|unit| quote!(#[schemars(extend("unit" = #unit))]));
            let limits = attrs.limits.iter().map(|(keyword, value)| {
                quote_spanned! {value.span()=> #[schemars(extend(#keyword = #value))] }
            });
            let description = attrs
                .description
                .as_deref()
                .map(|text| quote!(#[schemars(description = #text)]));
            // Limits fit the type: numbers' on numbers, lengths on strings (one error, at the
            // type, otherwise).
            if attrs.numeric {
                sources.push(quote_spanned! {inner.span()=>
                    ::labthings::__private::assert_numeric_argument::<#inner>();
                });
            }
            if attrs.textual {
                sources.push(quote_spanned! {inner.span()=>
                    ::labthings::__private::assert_string_argument::<#inner>();
                });
            }
            let wrapped = match input.option_of {
                Some(_) => quote!(::core::option::Option<::labthings::__private::Arg<#source>>),
                None => quote!(::labthings::__private::Arg<#source>),
            };
            let default = attrs.default.as_ref().map(|value| {
                let function = format_ident!("__labthings_default_{}", field);
                let path = function.to_string();
                let made = match input.option_of {
                    Some(_) => quote!(::core::option::Option::Some(::labthings::__private::Arg(#value))),
                    None => quote!(::labthings::__private::Arg(#value)),
                };
                sources.push(quote_spanned! {value.span()=>
                    #[allow(non_snake_case)]
                    fn #function() -> #wrapped { #made }
                });
                quote_spanned! {value.span()=>
                    #[serde(default = #path)]
                    #[schemars(extend("default" = #value))]
                }
            });
            quote_spanned! {ty.span()=> #unit #(#limits)* #description #default #field: #wrapped }
        })
        .collect();
    let field_names: Vec<_> = action.inputs.iter().map(|input| input.name).collect();
    let unwrap = action.inputs.iter().map(|input| {
        let field = input.name;
        if input.option_of.is_some() {
            quote!(let #field = #field.map(|argument| argument.0);)
        } else {
            quote!(let #field = #field.0;)
        }
    });
    let unwrap = quote!(#(#unwrap)*);
    let call_args = action.arguments.iter().map(|argument| match argument {
        Argument::Input(name) => quote!(#name),
        Argument::Context => quote!(context.clone()),
    });
    let call = match action.execution {
        Execution::Async => quote!(thing.#method(#(#call_args),*).await),
        Execution::Blocking => quote!(thing.#method(#(#call_args),*)),
    };
    let infallible = quote!(::labthings::__private::Infallible);
    // The output, like each argument, goes through a type of its own, so that an output type
    // that is not one is only the `assert_output` error, at the type as written.
    let out = quote!(::labthings::__private::Out::<__LabthingsOutput>);
    let (result, output_type) = match &action.returns {
        Returns::Nothing => (
            quote!({ #call; ::core::result::Result::Ok::<(), #infallible>(()) }),
            None,
        ),
        Returns::Value(ty) => (
            quote!(::core::result::Result::Ok::<_, #infallible>(#out(#call))),
            Some(*ty),
        ),
        Returns::Result(ok) => (quote!((#call).map(#out)), Some(*ok)),
    };
    let output_source = output_type.map(|ty| {
        quote_spanned! {ty.span()=>
            ::labthings::__private::assert_output::<#ty>();
            enum __LabthingsOutput {}
            impl ::labthings::__private::OutputSource for __LabthingsOutput {
                type Value = #ty;
                fn output() -> ::labthings::__private::OutputFns<#ty> {
                    #[allow(unused_imports)]
                    use ::labthings::__private::{CheckedOutput as _, UncheckedOutput as _};
                    (&::labthings::__private::OutputProbe::<#ty>::new()).output()
                }
            }
        }
    });
    let run = match action.execution {
        Execution::Async => quote! {
            from_async(#name, |thing: ::std::sync::Arc<Self>, input: #input_struct, context: ::labthings::__private::ActionContext| async move {
                let #input_struct { #(#field_names),* } = input;
                #unwrap
                let _ = &context;
                #result
            })
        },
        Execution::Blocking => quote! {
            from_blocking(#name, |thing: &Self, input: #input_struct, context: ::labthings::__private::ActionContext| {
                let #input_struct { #(#field_names),* } = input;
                #unwrap
                let _ = &context;
                #result
            })
        },
    };
    // A blocking method cannot be stopped from outside: only one that takes the context (and
    // checks it) can be cancelled once running.
    let takes_context = action
        .arguments
        .iter()
        .any(|argument| matches!(argument, Argument::Context));
    let cancellable = matches!(action.execution, Execution::Async) || takes_context;
    let title = option_str(action.title.as_deref());
    let description = option_str(action.description.as_deref());
    let lock = match &action.lock {
        Lock::None => quote!(),
        Lock::Own => quote!(.with_lock(true)),
        Lock::Named(name) => quote!(.with_named_lock(#name)),
    };
    let refuse = action
        .refuse_while_faulted
        .then(|| quote!(.with_refuse_while_faulted(true)));
    let output_unit = action
        .output_unit
        .as_deref()
        .map(|unit| quote!(.with_output_unit(#unit)));
    quote! {
        {
            #[allow(non_camel_case_types)]
            #[derive(::labthings::__private::serde::Deserialize, ::labthings::__private::schemars::JsonSchema)]
            #[serde(crate = "::labthings::__private::serde", deny_unknown_fields)]
            #[schemars(crate = "::labthings::__private::schemars", title = #input_title)]
            struct #input_struct { #(#fields),* }
            #(#sources)*
            #output_source
            actions.push(
                ::labthings::__private::ActionDescriptor::<Self>::#run
                    .with_docs(#title, #description)
                    .with_cancellable(#cancellable)
                    #lock
                    #refuse
                    #output_unit,
            );
        }
    }
}
