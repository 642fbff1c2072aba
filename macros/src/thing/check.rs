//! Rules that look at more than one attribute key or more than one field.

use std::collections::HashMap;

use super::ast::{Access, LengthKey, MemberKind, NumericKey, Persistence, PropertyOptions, Thing};
use crate::ctxt::Errors;
use crate::names::{self, Named};

pub fn check(thing: &Thing<'_>, errors: &mut Errors) {
    unique_names(thing, errors);
    health_once_and_its_names_free(thing, errors);
    for member in &thing.members {
        if matches!(member.kind, MemberKind::Health) {
            // Not an affordance itself: it adds `state`, `fault` and `clear_fault`.
            continue;
        }
        let _ = names::check_affordance_name(&member.name, member.name_span, Named::Field, errors);
        match &member.kind {
            MemberKind::Property(options) => {
                attribute_fits_the_type(member.ty, errors);
                settings_are_writable(options.persistence, options.access, errors);
                ranges_are_consistent(&options.numeric, errors);
                lengths_are_consistent(&options.lengths, errors);
                pattern_compiles(options.pattern.as_ref(), errors);
                interval_needs_a_history(options, errors);
            }
            MemberKind::Stream { ringbuffer, .. } => ringbuffer_holds_a_frame(*ringbuffer, errors),
            MemberKind::Event { .. } | MemberKind::Health => {}
        }
    }
}

/// The names `#[health]` adds.
const HEALTH_NAMES: [&str; 3] = ["state", "fault", "clear_fault"];

/// One `#[health]` per Thing, and no affordance of its own under the names it adds.
fn health_once_and_its_names_free(thing: &Thing<'_>, errors: &mut Errors) {
    let healths: Vec<_> = thing
        .members
        .iter()
        .filter(|m| matches!(m.kind, MemberKind::Health))
        .collect();
    if let Some(second) = healths.get(1) {
        errors.push(syn::Error::new(
            second.name_span,
            format!(
                "a Thing has one `#[health]`; `{}` already is",
                healths[0].field
            ),
        ));
    }
    if healths.is_empty() {
        return;
    }
    for member in &thing.members {
        if !matches!(member.kind, MemberKind::Health)
            && HEALTH_NAMES.contains(&member.name.as_str())
        {
            errors.push(syn::Error::new(
                member.name_span,
                format!(
                    "`{}` is one of the names `#[health]` adds to this Thing (`{}`); rename this one",
                    member.name,
                    HEALTH_NAMES.join("`, `")
                ),
            ));
        }
    }
}

/// Two affordances cannot share a URL.
fn unique_names(thing: &Thing<'_>, errors: &mut Errors) {
    let mut seen = HashMap::new();
    for member in &thing.members {
        if let Some(first) = seen.insert(member.name.as_str(), member.field) {
            errors.push(syn::Error::new(
                member.name_span,
                format!(
                    "the name `{}` is already used by field `{first}`; rename one of them",
                    member.name
                ),
            ));
        }
    }
}

/// A stream or an event marked `#[property]`: say which attribute it takes. (Other wrong
/// types are reported by the type system, with the framework's own message.)
fn attribute_fits_the_type(ty: &syn::Type, errors: &mut Errors) {
    let syn::Type::Path(path) = ty else { return };
    let Some(last) = path.path.segments.last() else {
        return;
    };
    let hint = match last.ident.to_string().as_str() {
        "MjpegStream" => "an `MjpegStream` is a stream: mark it `#[stream]`, not `#[property]`",
        "Event" => "an `Event<T>` is an event: mark it `#[event]`, not `#[property]`",
        _ => return,
    };
    errors.push(syn::Error::new_spanned(ty, hint));
}

/// `history_interval` says how a history is coalesced, so it needs a `history`.
fn interval_needs_a_history(options: &PropertyOptions, errors: &mut Errors) {
    if let (None, Some((_, span))) = (options.history, options.history_interval) {
        errors.push(syn::Error::new(
            span,
            "`history_interval` needs a `history` (`history = \"10 min\"` or `history = 1000`)",
        ));
    }
    if let (None, Some(span)) = (options.history, options.history_log) {
        errors.push(syn::Error::new(
            span,
            "`history_log` needs a `history` (`history = \"10 min\"` or `history = 1000`)",
        ));
    }
}

/// A setting is a value users choose, so it must be writable.
fn settings_are_writable(persistence: Persistence, access: Access, errors: &mut Errors) {
    if let (Persistence::Setting, Access::ReadOnly(span)) = (persistence, access) {
        errors.push(syn::Error::new(
            span,
            "a `#[setting]` cannot be `read_only`: settings are values users choose; use \
             `#[property(read_only)]` for a value only the instrument changes",
        ));
    }
}

/// `min <= max`, open bounds leave room, `multiple_of > 0`, and no key twice.
fn ranges_are_consistent(numeric: &[(NumericKey, f64, proc_macro2::Span)], errors: &mut Errors) {
    let get = |key| numeric.iter().find(|(k, _, _)| *k == key);
    for (i, (key, _, span)) in numeric.iter().enumerate() {
        if numeric[..i].iter().any(|(k, _, _)| k == key) {
            errors.push(syn::Error::new(
                *span,
                format!("`{}` is given twice", key.attr()),
            ));
        }
    }
    let lower = [NumericKey::Min, NumericKey::ExclusiveMin];
    let upper = [NumericKey::Max, NumericKey::ExclusiveMax];
    for low in lower {
        for high in upper {
            if let (Some((_, min, _)), Some((_, max, span))) = (get(low), get(high)) {
                let open = low == NumericKey::ExclusiveMin || high == NumericKey::ExclusiveMax;
                if max < min || (open && max <= min) {
                    errors.push(syn::Error::new(
                        *span,
                        format!(
                            "no value fits: the upper bound {max} is below the lower bound {min}"
                        ),
                    ));
                }
            }
        }
    }
    if let Some((_, step, span)) = get(NumericKey::MultipleOf)
        && *step <= 0.0
    {
        errors.push(syn::Error::new(
            *span,
            "`multiple_of` must be greater than 0",
        ));
    }
}

fn lengths_are_consistent(lengths: &[(LengthKey, u64, proc_macro2::Span)], errors: &mut Errors) {
    let get = |key| lengths.iter().find(|(k, _, _)| *k == key);
    if let (Some((_, min, _)), Some((_, max, span))) =
        (get(LengthKey::MinLength), get(LengthKey::MaxLength))
        && max < min
    {
        errors.push(syn::Error::new(
            *span,
            format!("no string fits: `max_length` {max} is below `min_length` {min}"),
        ));
    }
}

/// A pattern that does not compile would reject every value at run time.
fn pattern_compiles(pattern: Option<&(String, proc_macro2::Span)>, errors: &mut Errors) {
    if let Some((pattern, span)) = pattern
        && let Err(error) = regex_lite::Regex::new(pattern)
    {
        errors.push(syn::Error::new(
            *span,
            format!("invalid `pattern`: {error}"),
        ));
    }
}

fn ringbuffer_holds_a_frame(ringbuffer: Option<(usize, proc_macro2::Span)>, errors: &mut Errors) {
    if let Some((0, span)) = ringbuffer {
        errors.push(syn::Error::new(
            span,
            "`ringbuffer` must hold at least one frame",
        ));
    }
}
