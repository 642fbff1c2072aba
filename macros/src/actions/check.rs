//! Rules that look at more than one action.

use std::collections::HashMap;

use super::ast::Action;
use crate::ctxt::Errors;
use crate::names::{self, Named};

pub fn check(actions: &[Action<'_>], errors: &mut Errors) {
    let mut seen = HashMap::new();
    for action in actions {
        // A name that cannot be used at all is reported once, not also as a duplicate.
        if names::check_affordance_name(&action.name, action.name_span, Named::Action, errors) {
            unique_name(action, &mut seen, errors);
        }
    }
}

/// Two actions cannot share a URL.
fn unique_name<'a>(
    action: &'a Action<'_>,
    seen: &mut HashMap<&'a str, &'a syn::Ident>,
    errors: &mut Errors,
) {
    if let Some(first) = seen.insert(action.name.as_str(), action.method) {
        errors.at(
            action.name_span,
            format!(
                "the action name `{}` is already used by method `{first}`; rename one of them",
                action.name
            ),
        );
    }
}
