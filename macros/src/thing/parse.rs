//! Parsing `#[thing(...)]`, `#[property(...)]`, `#[setting(...)]` and `#[stream(...)]` into the
//! intermediate representation, collecting every error with its span.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, LitStr};

use super::ast::{
    Access, HistoryLength, LengthKey, Member, MemberKind, NumericKey, Persistence, PropertyOptions,
    Thing,
};
use crate::ctxt::Errors;
use crate::names::docs;
use crate::symbol::{self, Key};

pub fn parse<'a>(input: &'a DeriveInput, errors: &mut Errors) -> Option<Thing<'a>> {
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => &fields.named,
            _ => {
                errors.push(syn::Error::new(
                    input.ident.span(),
                    "`#[derive(Thing)]` needs a struct with named fields",
                ));
                return None;
            }
        },
        _ => {
            errors.push(syn::Error::new(
                input.ident.span(),
                "`#[derive(Thing)]` needs a struct with named fields, not an enum or union",
            ));
            return None;
        }
    };
    let (doc_title, doc) = docs(&input.attrs);
    let mut thing = Thing {
        ident: &input.ident,
        generics: &input.generics,
        title: doc_title.unwrap_or_else(|| input.ident.to_string()),
        description: doc,
        on_start: None,
        on_stop: None,
        instance_properties: None,
        members: Vec::new(),
    };
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("thing")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path == symbol::TITLE {
                thing.title = string(&meta)?.value();
            } else if meta.path == symbol::DESCRIPTION {
                thing.description = Some(string(&meta)?.value());
            } else if meta.path == symbol::ON_START {
                thing.on_start = Some(meta.value()?.parse()?);
            } else if meta.path == symbol::ON_STOP {
                thing.on_stop = Some(meta.value()?.parse()?);
            } else if meta.path == symbol::INSTANCE_PROPERTIES {
                thing.instance_properties = Some(meta.value()?.parse()?);
            } else {
                return Err(symbol::unknown(&meta, symbol::THING_KEYS));
            }
            Ok(())
        });
        if let Err(error) = result {
            errors.push(error);
        }
    }
    for field in fields {
        let Some(ident) = &field.ident else { continue };
        let marked: Vec<&Attribute> = field
            .attrs
            .iter()
            .filter(|a| {
                [
                    symbol::PROPERTY,
                    symbol::SETTING,
                    symbol::STREAM,
                    symbol::EVENT,
                    symbol::HEALTH,
                ]
                .iter()
                .any(|k| a.path().is_ident(k))
            })
            .collect();
        if marked.len() > 1 {
            errors.push(syn::Error::new(
                marked[1].span(),
                "a field is one of `#[property]`, `#[setting]`, `#[stream]`, `#[event]` or \
                 `#[health]`, not several",
            ));
        }
        let Some(attr) = marked.first() else { continue };
        let (title, description) = docs(&field.attrs);
        let mut member = Member {
            field: ident,
            ty: &field.ty,
            name: ident.to_string(),
            name_span: ident.span(),
            title,
            description,
            kind: MemberKind::Stream {
                ringbuffer: None,
                record: false,
            },
        };
        let result = if attr.path().is_ident(symbol::STREAM) {
            parse_stream(attr, &mut member)
        } else if attr.path().is_ident(symbol::EVENT) {
            parse_event(attr, &mut member)
        } else if attr.path().is_ident(symbol::HEALTH) {
            parse_health(attr, &mut member)
        } else {
            parse_property(attr, &mut member)
        };
        if let Err(error) = result {
            errors.push(error);
        }
        thing.members.push(member);
    }
    Some(thing)
}

fn parse_stream(attr: &Attribute, member: &mut Member<'_>) -> syn::Result<()> {
    let mut ringbuffer = None;
    let mut record = false;
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        attr.parse_nested_meta(|meta| {
            if meta.path == symbol::RINGBUFFER {
                let lit: syn::LitInt = meta.value()?.parse()?;
                ringbuffer = Some((lit.base10_parse::<usize>()?, lit.span()));
            } else if meta.path == symbol::RECORD {
                record = true;
            } else if meta.path == symbol::RENAME {
                let lit = string(&meta)?;
                member.name = lit.value();
                member.name_span = lit.span();
            } else {
                return Err(symbol::unknown(&meta, symbol::STREAM_KEYS));
            }
            Ok(())
        })?;
    }
    member.kind = MemberKind::Stream { ringbuffer, record };
    Ok(())
}

fn parse_event(attr: &Attribute, member: &mut Member<'_>) -> syn::Result<()> {
    let mut unit = None;
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        attr.parse_nested_meta(|meta| {
            if meta.path == symbol::UNIT {
                let lit = string(&meta)?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(lit.span(), "a unit cannot be empty"));
                }
                unit = Some(lit.value());
            } else if !naming_key(&meta, member)? {
                return Err(symbol::unknown(&meta, symbol::EVENT_KEYS));
            }
            Ok(())
        })?;
    }
    member.kind = MemberKind::Event { unit };
    Ok(())
}

/// `#[health]` takes no keys: what it adds has fixed names.
fn parse_health(attr: &Attribute, member: &mut Member<'_>) -> syn::Result<()> {
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        return Err(syn::Error::new(
            attr.meta.span(),
            "`#[health]` takes no keys: it adds the property `state`, the event `fault` and the \
             action `clear_fault`",
        ));
    }
    member.kind = MemberKind::Health;
    Ok(())
}

fn parse_property(attr: &Attribute, member: &mut Member<'_>) -> syn::Result<()> {
    let setting = attr.path().is_ident(symbol::SETTING);
    let mut options = PropertyOptions {
        persistence: if setting {
            Persistence::Setting
        } else {
            Persistence::Memory
        },
        access: Access::ReadWrite,
        observable: true,
        numeric: Vec::new(),
        lengths: Vec::new(),
        pattern: None,
        unit: None,
        history: None,
        history_interval: None,
        history_log: None,
    };
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        attr.parse_nested_meta(|meta| {
            let numeric: [(Key, NumericKey); 5] = [
                (symbol::MIN, NumericKey::Min),
                (symbol::MAX, NumericKey::Max),
                (symbol::EXCLUSIVE_MIN, NumericKey::ExclusiveMin),
                (symbol::EXCLUSIVE_MAX, NumericKey::ExclusiveMax),
                (symbol::MULTIPLE_OF, NumericKey::MultipleOf),
            ];
            let lengths: [(Key, LengthKey); 2] = [
                (symbol::MIN_LENGTH, LengthKey::MinLength),
                (symbol::MAX_LENGTH, LengthKey::MaxLength),
            ];
            if let Some((_, key)) = numeric.iter().find(|(k, _)| meta.path == *k) {
                let (value, span) = number(&meta)?;
                options.numeric.push((*key, value, span));
            } else if let Some((_, key)) = lengths.iter().find(|(k, _)| meta.path == *k) {
                let lit: syn::LitInt = meta.value()?.parse()?;
                options
                    .lengths
                    .push((*key, lit.base10_parse()?, lit.span()));
            } else if meta.path == symbol::PATTERN {
                let lit = string(&meta)?;
                options.pattern = Some((lit.value(), lit.span()));
            } else if meta.path == symbol::UNIT {
                let lit = string(&meta)?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(lit.span(), "a unit cannot be empty"));
                }
                options.unit = Some(lit.value());
            } else if meta.path == symbol::HISTORY {
                options.history = Some(history_length(&meta)?);
            } else if meta.path == symbol::HISTORY_LOG {
                options.history_log = Some(meta.path.span());
            } else if meta.path == symbol::HISTORY_INTERVAL {
                let lit = string(&meta)?;
                let interval = humantime::parse_duration(&lit.value()).map_err(|error| {
                    syn::Error::new(
                        lit.span(),
                        format!("expected a duration such as \"100 ms\" or \"1 s\" ({error})"),
                    )
                })?;
                options.history_interval = Some((nanos(interval), lit.span()));
            } else if meta.path == symbol::READ_ONLY {
                options.access = Access::ReadOnly(meta.path.span());
            } else if meta.path == symbol::OBSERVABLE {
                options.observable = if meta.input.peek(syn::Token![=]) {
                    meta.value()?.parse::<syn::LitBool>()?.value
                } else {
                    true
                };
            } else if !naming_key(&meta, member)? {
                return Err(symbol::unknown(&meta, symbol::PROPERTY_KEYS));
            }
            Ok(())
        })?;
    }
    member.kind = MemberKind::Property(options);
    Ok(())
}

/// Reads `rename`, `title` or `description`, the keys that name and describe any affordance;
/// false if `meta` is none of them.
fn naming_key(meta: &ParseNestedMeta<'_>, member: &mut Member<'_>) -> syn::Result<bool> {
    if meta.path == symbol::RENAME {
        let lit = string(meta)?;
        member.name = lit.value();
        member.name_span = lit.span();
    } else if meta.path == symbol::TITLE {
        member.title = Some(string(meta)?.value());
    } else if meta.path == symbol::DESCRIPTION {
        member.description = Some(string(meta)?.value());
    } else {
        return Ok(false);
    }
    Ok(true)
}

/// `history = 1000` (samples) or `history = "10 min"` (a duration, as humantime reads it; the
/// library reads the configuration's the same way).
fn history_length(meta: &ParseNestedMeta<'_>) -> syn::Result<HistoryLength> {
    let lit: syn::Lit = meta.value()?.parse()?;
    match &lit {
        syn::Lit::Int(int) => match int.base10_parse::<u64>()? {
            0 => Err(syn::Error::new(
                int.span(),
                "a history keeps at least one sample",
            )),
            count => Ok(HistoryLength::Samples(count)),
        },
        syn::Lit::Str(text) => match humantime::parse_duration(&text.value()) {
            Ok(duration) if !duration.is_zero() => Ok(HistoryLength::Nanos(nanos(duration))),
            Ok(_) => Err(syn::Error::new(
                text.span(),
                "a history cannot be zero long",
            )),
            Err(error) => Err(syn::Error::new(
                text.span(),
                format!(
                    "expected a duration such as \"10 min\" or \"30 s\", or a number of samples ({error})"
                ),
            )),
        },
        other => Err(syn::Error::new(
            other.span(),
            "expected a number of samples (`history = 1000`) or a duration (`history = \"10 min\"`)",
        )),
    }
}

fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn string(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

/// A number literal, possibly negative, as `f64`.
fn number(meta: &ParseNestedMeta<'_>) -> syn::Result<(f64, Span)> {
    let input = meta.value()?;
    let negative = input.parse::<Option<syn::Token![-]>>()?.is_some();
    let lit: syn::Lit = input.parse()?;
    let value = match &lit {
        syn::Lit::Int(int) => int.base10_parse::<f64>()?,
        syn::Lit::Float(float) => float.base10_parse::<f64>()?,
        other => return Err(syn::Error::new(other.span(), "expected a number")),
    };
    Ok((if negative { -value } else { value }, lit.span()))
}
