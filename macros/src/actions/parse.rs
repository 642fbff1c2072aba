//! Parsing the methods of a `#[thing_actions]` impl block into [`Action`]s, collecting every
//! error with its span.

use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use super::ast::{Action, Argument, ArgumentAttrs, Execution, Input, Lock, Options, Returns};
use crate::ctxt::Errors;
use crate::names::docs;
use crate::symbol;

/// Takes `#[action(...)]` off every method (so the methods compile as written) and returns the
/// options of each, in order.
pub fn take_options(item: &mut ItemImpl, errors: &mut Errors) -> Vec<Options> {
    item.items
        .iter_mut()
        .filter_map(|item| match item {
            ImplItem::Fn(method) => Some(options(method, errors)),
            _ => None,
        })
        .collect()
}

fn options(method: &mut ImplItemFn, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    // `#[unit = "ms"]`, `#[min = 0.0]`, ... on an argument: taken off (the method compiles as
    // written) and kept.
    for input in &mut method.sig.inputs {
        let FnArg::Typed(typed) = input else { continue };
        let name = match &*typed.pat {
            Pat::Ident(ident) => ident.ident.to_string(),
            _ => String::new(),
        };
        let mut attrs = ArgumentAttrs::default();
        typed.attrs.retain(|attr| {
            let Some(key) = symbol::ARGUMENT_KEYS
                .iter()
                .find(|key| *attr.path() == **key)
            else {
                return true;
            };
            if let Err(error) = argument_attr(*key, attr, &mut attrs) {
                errors.push(error);
            }
            false
        });
        options.arguments.push((name, attrs));
    }
    method.attrs.retain(|attr| {
        if !attr.path().is_ident(symbol::ACTION) {
            return true;
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path == symbol::SKIP {
                options.skip = true;
            } else if meta.path == symbol::LOCK {
                options.lock = if meta.input.peek(syn::Token![=]) {
                    let lit: syn::LitStr = meta.value()?.parse()?;
                    if lit.value().is_empty() {
                        return Err(syn::Error::new(lit.span(), "a lock's name cannot be empty"));
                    }
                    Lock::Named(lit.value())
                } else {
                    Lock::Own
                };
            } else if meta.path == symbol::REFUSE_WHILE_FAULTED {
                options.refuse_while_faulted = true;
            } else if meta.path == symbol::OUTPUT_UNIT {
                let lit: syn::LitStr = meta.value()?.parse()?;
                if lit.value().trim().is_empty() {
                    return Err(syn::Error::new(lit.span(), "a unit cannot be empty"));
                }
                options.output_unit = Some(lit.value());
            } else if meta.path == symbol::RENAME {
                let lit: syn::LitStr = meta.value()?.parse()?;
                options.rename = Some((lit.value(), lit.span()));
            } else {
                return Err(symbol::unknown(&meta, symbol::ACTION_KEYS));
            }
            Ok(())
        });
        if let Err(error) = result {
            errors.push(error);
        }
        false
    });
    options
}

/// The actions of an impl block: every method not skipped.
pub fn parse<'a>(
    item: &'a ItemImpl,
    options: Vec<Options>,
    errors: &mut Errors,
) -> Vec<Action<'a>> {
    let methods = item.items.iter().filter_map(|item| match item {
        ImplItem::Fn(method) => Some(method),
        _ => None,
    });
    methods
        .zip(options)
        .filter(|(_, options)| !options.skip)
        .filter_map(|(method, options)| action(method, options, errors))
        .collect()
}

fn action<'a>(method: &'a ImplItemFn, options: Options, errors: &mut Errors) -> Option<Action<'a>> {
    if !receiver_is_ref_self(method, errors) {
        return None;
    }
    if !method.sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &method.sig.generics,
            "actions cannot be generic",
        ));
        return None;
    }
    let (name, name_span) = options
        .rename
        .unwrap_or_else(|| (method.sig.ident.to_string(), method.sig.ident.span()));
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
        let attrs = options
            .arguments
            .iter()
            .find(|(argument, _)| ident.ident == argument)
            .map(|(_, attrs)| attrs.clone())
            .unwrap_or_default();
        inputs.push(Input {
            name: &ident.ident,
            ty: &typed.ty,
            option_of: first_type_argument(&typed.ty, "Option"),
            attrs,
        });
        arguments.push(Argument::Input(&ident.ident));
    }
    let returns = match &method.sig.output {
        ReturnType::Default => Returns::Nothing,
        ReturnType::Type(_, ty) => match first_type_argument(ty, "Result") {
            Some(ok) => Returns::Result(ok),
            None => Returns::Value(ty),
        },
    };
    let (title, description) = docs(&method.attrs);
    Some(Action {
        method: &method.sig.ident,
        name,
        name_span,
        title,
        description,
        execution: if method.sig.asyncness.is_some() {
            Execution::Async
        } else {
            Execution::Blocking
        },
        lock: options.lock.clone(),
        refuse_while_faulted: options.refuse_while_faulted,
        output_unit: options.output_unit.clone(),
        inputs,
        arguments,
        returns,
    })
}

/// Whether the method takes `&self`; if not, an error saying why it cannot be an action.
fn receiver_is_ref_self(method: &ImplItemFn, errors: &mut Errors) -> bool {
    let name = &method.sig.ident;
    let skip = "mark it `#[action(skip)]` to keep it in this block as a plain method";
    let problem = match method.sig.inputs.first() {
        Some(FnArg::Receiver(receiver)) => match &receiver.kind {
            syn::ReceiverKind::Reference(_, _, None) => return true,
            syn::ReceiverKind::Reference(_, _, Some(_)) => format!(
                "`{name}` takes `&mut self`, so it cannot be an action: actions run while \
                 requests are served and take `&self` (keep changing state in a `Property` or a \
                 `Mutex`); {skip}"
            ),
            _ => format!(
                "`{name}` takes `{}`, so it cannot be an action: actions take `&self`; {skip}",
                quote::ToTokens::to_token_stream(receiver)
            ),
        },
        _ => format!(
            "`{name}` has no `self`, so it cannot be an action: actions are methods taking \
             `&self`; {skip}, or move it to an impl block without `#[thing_actions]`"
        ),
    };
    errors.at(method.sig.ident.span(), problem);
    false
}

/// An argument of type `ActionContext` (by its last path segment) is the context, not input.
fn is_context(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == "ActionContext"))
}

/// `T` of `Wrapper<T, ...>` (by the type's last path segment): `Result`'s `Ok`, `Option`'s
/// content.
fn first_type_argument<'a>(ty: &'a Type, wrapper: &str) -> Option<&'a Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != wrapper {
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

/// The span of the impl block's generics, if it has any (actions need a concrete type).
pub fn generics_span(item: &ItemImpl) -> Option<proc_macro2::Span> {
    (!item.generics.params.is_empty()).then(|| item.generics.span())
}

/// Reads one attribute of an argument, `#[key = value]`, into `attrs`.
fn argument_attr(
    key: symbol::Key,
    attr: &syn::Attribute,
    attrs: &mut ArgumentAttrs,
) -> syn::Result<()> {
    let syn::Meta::NameValue(syn::MetaNameValue { value, .. }) = &attr.meta else {
        return Err(syn::Error::new_spanned(
            attr,
            format!(
                "write an argument's `{key}` as `#[{key} = ...]`",
                key = key.0
            ),
        ));
    };
    let text = |what: &str| match value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(text),
            ..
        }) if !text.value().trim().is_empty() => Ok(text.value()),
        _ => Err(syn::Error::new_spanned(
            value,
            format!(
                "write an argument's {what} as `#[{key} = \"...\"]`",
                key = key.0
            ),
        )),
    };
    let number = || match value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(_) | syn::Lit::Float(_),
            ..
        }) => Ok(value.clone()),
        syn::Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) if matches!(
            &**expr,
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(_) | syn::Lit::Float(_),
                ..
            })
        ) =>
        {
            Ok(value.clone())
        }
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{key}` takes a number: `#[{key} = 0.5]`", key = key.0),
        )),
    };
    let keyword = match key.0 {
        "unit" => {
            attrs.unit = Some(text("unit")?);
            return Ok(());
        }
        "description" => {
            attrs.description = Some(text("description")?);
            return Ok(());
        }
        "default" => {
            attrs.default = Some(value.clone());
            return Ok(());
        }
        "min" => "minimum",
        "max" => "maximum",
        "exclusive_min" => "exclusiveMinimum",
        "exclusive_max" => "exclusiveMaximum",
        "multiple_of" => "multipleOf",
        "min_length" => "minLength",
        _ => "maxLength",
    };
    if keyword.ends_with("Length") {
        attrs.textual = true;
    } else {
        attrs.numeric = true;
    }
    attrs.limits.push((keyword, number()?));
    Ok(())
}
