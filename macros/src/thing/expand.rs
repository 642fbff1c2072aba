//! Code generation, from the intermediate representation only.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::DeriveInput;
use syn::spanned::Spanned;

use super::ast::{Access, HistoryLength, Member, MemberKind, Persistence, PropertyOptions, Thing};
use crate::expand::option_str;

/// A minimal impl, emitted beside the errors so the rest of the user's code keeps compiling and
/// they see the attribute errors and nothing else.
pub fn stub(input: &DeriveInput) -> TokenStream {
    if !matches!(input.data, syn::Data::Struct(_)) {
        return TokenStream::new();
    }
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let title = ident.to_string();
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_generics ::labthings::Thing for #ident #ty_generics #where_clause {
                fn descriptor() -> ::labthings::__private::ThingDescriptor<Self> {
                    ::labthings::__private::ThingDescriptor::new(#title)
                }
            }
        };
    }
}

/// The `Thing` impl.
pub fn implementation(thing: &Thing<'_>) -> TokenStream {
    let ident = thing.ident;
    let (impl_generics, ty_generics, where_clause) = thing.generics.split_for_impl();
    let title = &thing.title;
    let description = option_str(thing.description.as_deref());
    let members = thing.members.iter().map(member);
    let start = thing.on_start.as_ref().map(|hook| {
        quote_spanned! {hook.span()=>
            async fn start(&self) -> ::core::result::Result<(), ::labthings::__private::BoxError> {
                ::labthings::__private::lifecycle_result(#hook(self).await)
            }
        }
    });
    let stop = thing.on_stop.as_ref().map(|hook| {
        quote_spanned! {hook.span()=>
            async fn stop(&self) {
                #hook(self).await
            }
        }
    });
    let instance_properties = thing.instance_properties.as_ref().map(|hook| {
        quote_spanned! {hook.span()=>
            fn instance_properties(&self) -> ::std::vec::Vec<::labthings::__private::PropertyDescriptor<Self>> {
                #hook(self)
            }
        }
    });
    // `#[stream(record)]`: a `record_<stream>` action each, after the Thing's own.
    let recordings = thing.members.iter().filter_map(|member| {
        let MemberKind::Stream { record: true, .. } = member.kind else {
            return None;
        };
        let (field, ty, name) = (member.field, member.ty, &member.name);
        let action = format!("record_{name}");
        let access = quote_spanned! {ty.span()=>
            |thing: &Self| ::labthings::__private::stream::<#ty>(&thing.#field)
        };
        Some(quote! {
            descriptor
                .actions
                .push(::labthings::__private::record_action::<Self>(#action, #name, #access));
        })
    });
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_generics ::labthings::Thing for #ident #ty_generics #where_clause {
                fn descriptor() -> ::labthings::__private::ThingDescriptor<Self> {
                    let mut descriptor = ::labthings::__private::ThingDescriptor::new(#title);
                    descriptor.description = #description.map(::std::string::String::from);
                    #(#members)*
                    descriptor.actions = {
                        #[allow(unused_imports)]
                        use ::labthings::__private::{HasActions as _, NoActions as _};
                        (&::labthings::__private::ActionsProbe::<Self>::new()).actions()
                    };
                    #(#recordings)*
                    descriptor
                }
                #start
                #stop
                #instance_properties
            }
        };
    }
}

fn member(member: &Member<'_>) -> TokenStream {
    let field = member.field;
    let ty = member.ty;
    let name = &member.name;
    let description = option_str(member.description.as_deref());
    match &member.kind {
        MemberKind::Health => {
            // The same trait bound each time, so that a field of the wrong type is one error.
            let field_health = quote_spanned! {ty.span()=>
                <#ty as ::labthings::__private::HealthField>::health(&thing.#field)
            };
            let health = quote!(|thing: &Self| #field_health);
            let state = quote!(|thing: &Self| ::labthings::__private::health_state(#field_health));
            let fault = quote!(|thing: &Self| ::labthings::__private::health_fault(#field_health));
            quote! {
                ::labthings::__private::add_health::<Self>(&mut descriptor, #health, #state, #fault);
            }
        }
        MemberKind::Event { unit } => {
            let title = option_str(member.title.as_deref());
            let unit = option_str(unit.as_deref());
            let access = quote_spanned! {ty.span()=>
                |thing: &Self| ::labthings::__private::event::<#ty>(&thing.#field)
            };
            quote! {
                descriptor.events.push({
                    let mut event = ::labthings::__private::EventDescriptor::new(
                        #name,
                        <#ty as ::labthings::__private::EventField>::schema,
                        #access,
                    );
                    event.title = #title;
                    event.description = #description;
                    event.unit = #unit;
                    event
                });
            }
        }
        MemberKind::Stream { ringbuffer, .. } => {
            let ringbuffer = match ringbuffer {
                Some((size, _)) => quote!(::core::option::Option::Some(#size)),
                None => quote!(::core::option::Option::None),
            };
            let access = quote_spanned! {ty.span()=>
                |thing: &Self| ::labthings::__private::stream::<#ty>(&thing.#field)
            };
            quote! {
                descriptor.streams.push({
                    let mut stream = ::labthings::__private::StreamDescriptor::new(#name, #access);
                    stream.description = #description;
                    stream.ringbuffer = #ringbuffer;
                    stream
                });
            }
        }
        MemberKind::Property(options) => {
            let title = option_str(member.title.as_deref());
            let read_only = matches!(options.access, Access::ReadOnly(_));
            let setting = matches!(options.persistence, Persistence::Setting);
            let observable = options.observable;
            let unit = option_str(options.unit.as_deref());
            let constraints = constraints(options);
            let history = history(options);
            let type_checks = type_checks(ty, options);
            let access = quote_spanned! {ty.span()=>
                |thing: &Self| ::labthings::__private::property::<#ty>(&thing.#field)
            };
            quote! {
                #type_checks
                descriptor.properties.push({
                    let mut property = ::labthings::__private::PropertyDescriptor::new(
                        #name,
                        <#ty as ::labthings::__private::PropertyField>::schema,
                        #access,
                    );
                    property.title = #title;
                    property.description = #description;
                    property.read_only = #read_only;
                    property.setting = #setting;
                    property.observable = #observable;
                    property.unit = #unit;
                    #constraints
                    #history
                    property
                });
            }
        }
    }
}

fn constraints(options: &PropertyOptions) -> TokenStream {
    let numeric = options.numeric.iter().map(|(key, value, _)| {
        let field = format_ident!("{}", key.field());
        quote!(property.constraints.#field = ::core::option::Option::Some(#value);)
    });
    let lengths = options.lengths.iter().map(|(key, value, _)| {
        let field = format_ident!("{}", key.field());
        quote!(property.constraints.#field = ::core::option::Option::Some(#value);)
    });
    let pattern = options.pattern.as_ref().map(|(pattern, _)| {
        quote!(property.constraints.pattern = ::core::option::Option::Some(#pattern);)
    });
    quote!(#(#numeric)* #(#lengths)* #pattern)
}

/// `property.history = ...` from `history` and `history_interval`.
fn history(options: &PropertyOptions) -> TokenStream {
    let Some(length) = options.history else {
        return TokenStream::new();
    };
    let base = match length {
        HistoryLength::Samples(count) => {
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            quote!(::labthings::property::HistoryOptions::samples(#count))
        }
        HistoryLength::Nanos(nanos) => quote!(::labthings::property::HistoryOptions::duration(
            ::core::time::Duration::from_nanos(#nanos)
        )),
    };
    let interval = options
        .history_interval
        .map(|(nanos, _)| quote!(.with_min_interval(::core::time::Duration::from_nanos(#nanos))));
    let log = options.history_log.map(|_| quote!(.with_log(true)));
    quote!(property.history = ::core::option::Option::Some(#base #interval #log);)
}

/// Compile-time checks that constraints fit the value type, pointing at the constraint.
fn type_checks(ty: &syn::Type, options: &PropertyOptions) -> TokenStream {
    let numeric = options.numeric.first().map(|(_, _, span)| {
        quote_spanned! {*span=> ::labthings::__private::assert_numeric::<#ty>(); }
    });
    let string = options
        .lengths
        .first()
        .map(|(_, _, span)| *span)
        .or(options.pattern.as_ref().map(|(_, span)| *span))
        .map(|span| quote_spanned! {span=> ::labthings::__private::assert_string::<#ty>(); });
    quote!(#numeric #string)
}
