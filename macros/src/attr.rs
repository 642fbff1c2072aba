//! Parsing `#[thing(...)]`, `#[property(...)]`, `#[setting(...)]` and `#[stream(...)]` into the
//! intermediate representation, collecting every error with its span.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, LitStr};

use crate::ast::{
    Access, LengthKey, Member, MemberKind, NumericKey, Persistence, PropertyOptions, Thing,
};

/// Collects errors instead of stopping at the first.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn finish(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

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
        members: Vec::new(),
    };
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("thing")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("title") {
                thing.title = string(&meta)?.value();
            } else if meta.path.is_ident("description") {
                thing.description = Some(string(&meta)?.value());
            } else if meta.path.is_ident("on_start") {
                thing.on_start = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("on_stop") {
                thing.on_stop = Some(meta.value()?.parse()?);
            } else {
                return Err(unknown(
                    &meta,
                    "`title`, `description`, `on_start`, `on_stop`",
                ));
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
                ["property", "setting", "stream"]
                    .iter()
                    .any(|k| a.path().is_ident(k))
            })
            .collect();
        if marked.len() > 1 {
            errors.push(syn::Error::new(
                marked[1].span(),
                "a field is one of `#[property]`, `#[setting]` or `#[stream]`, not several",
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
            kind: MemberKind::Stream { ringbuffer: None },
        };
        let result = if attr.path().is_ident("stream") {
            parse_stream(attr, &mut member)
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
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("ringbuffer") {
                let lit: syn::LitInt = meta.value()?.parse()?;
                ringbuffer = Some((lit.base10_parse::<usize>()?, lit.span()));
            } else if meta.path.is_ident("rename") {
                let lit = string(&meta)?;
                member.name = lit.value();
                member.name_span = lit.span();
            } else {
                return Err(unknown(&meta, "`ringbuffer`, `rename`"));
            }
            Ok(())
        })?;
    }
    member.kind = MemberKind::Stream { ringbuffer };
    Ok(())
}

fn parse_property(attr: &Attribute, member: &mut Member<'_>) -> syn::Result<()> {
    let setting = attr.path().is_ident("setting");
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
    };
    if !matches!(attr.meta, syn::Meta::Path(_)) {
        attr.parse_nested_meta(|meta| {
            let numeric = [
                ("min", NumericKey::Min),
                ("max", NumericKey::Max),
                ("exclusive_min", NumericKey::ExclusiveMin),
                ("exclusive_max", NumericKey::ExclusiveMax),
                ("multiple_of", NumericKey::MultipleOf),
            ];
            let lengths = [
                ("min_length", LengthKey::MinLength),
                ("max_length", LengthKey::MaxLength),
            ];
            if let Some((_, key)) = numeric.iter().find(|(n, _)| meta.path.is_ident(n)) {
                let (value, span) = number(&meta)?;
                options.numeric.push((*key, value, span));
            } else if let Some((_, key)) = lengths.iter().find(|(n, _)| meta.path.is_ident(n)) {
                let lit: syn::LitInt = meta.value()?.parse()?;
                options
                    .lengths
                    .push((*key, lit.base10_parse()?, lit.span()));
            } else if meta.path.is_ident("pattern") {
                let lit = string(&meta)?;
                options.pattern = Some((lit.value(), lit.span()));
            } else if meta.path.is_ident("read_only") {
                options.access = Access::ReadOnly(meta.path.span());
            } else if meta.path.is_ident("observable") {
                options.observable = if meta.input.peek(syn::Token![=]) {
                    meta.value()?.parse::<syn::LitBool>()?.value
                } else {
                    true
                };
            } else if meta.path.is_ident("rename") {
                let lit = string(&meta)?;
                member.name = lit.value();
                member.name_span = lit.span();
            } else if meta.path.is_ident("title") {
                member.title = Some(string(&meta)?.value());
            } else if meta.path.is_ident("description") {
                member.description = Some(string(&meta)?.value());
            } else {
                return Err(unknown(
                    &meta,
                    "`read_only`, `observable`, `rename`, `title`, `description`, `min`, `max`, \
                     `exclusive_min`, `exclusive_max`, `multiple_of`, `min_length`, `max_length`, \
                     `pattern`",
                ));
            }
            Ok(())
        })?;
    }
    member.kind = MemberKind::Property(options);
    Ok(())
}

fn unknown(meta: &ParseNestedMeta<'_>, known: &str) -> syn::Error {
    let key = meta
        .path
        .get_ident()
        .map_or_else(|| "this key".to_owned(), |i| format!("`{i}`"));
    meta.error(format!("unknown key {key}; the keys are {known}"))
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

/// The first line of the doc comment, and the whole comment.
pub fn docs(attrs: &[Attribute]) -> (Option<String>, Option<String>) {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    if text.is_empty() {
        return (None, None);
    }
    let title = text
        .lines()
        .next()
        .map(|line| line.trim_end_matches('.').to_owned());
    (title, Some(text))
}
