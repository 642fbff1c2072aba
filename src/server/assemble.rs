//! Assembling one Thing: check its affordance names, bind its properties and settings, and
//! serve each affordance (routes, OpenAPI operations, TD entries) through its kind's module.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::affordance::{self, Context, Serving};
use super::error::ServerError;
use super::lifecycle::Lifecycle;
use super::route_table::RouteTable;
use super::{settings, ws};
use crate::event::EventLog;
use crate::layout;
use crate::property::HistoryOptions;
use crate::property::binding::{Binding, Persist};
use crate::property::history::History;
use crate::property::history_log::HistoryLog;
use crate::property::settings::SettingsFile;
use crate::stream::MjpegStream;
use crate::td::ThingDescription;
use crate::thing::{PropertyDescriptor, Thing, ThingDescriptor};

/// One Thing, assembled.
pub(crate) struct Assembled {
    pub(crate) name: String,
    pub(crate) routes: RouteTable,
    pub(crate) description: ThingDescription,
    pub(crate) lifecycle: Arc<dyn Lifecycle>,
    pub(crate) streams: Vec<MjpegStream>,
    pub(crate) settings: Option<Arc<SettingsFile>>,
    /// Reads every property of the Thing, by name (for `ActionContext::snapshot`).
    pub(crate) state: Arc<dyn Fn() -> serde_json::Map<String, serde_json::Value> + Send + Sync>,
}

/// A Thing waiting to be assembled, its type erased.
pub(crate) type Assemble =
    Box<dyn FnOnce(&Context, Option<&Path>) -> Result<Assembled, ServerError> + Send>;

/// The assembly of `thing` under `name`, to run when the server is built.
pub(crate) fn later<T: Thing>(name: String, thing: Arc<T>) -> Assemble {
    Box::new(move |context, settings_folder| assemble(name, thing, context, settings_folder))
}

/// Binds a Thing's properties, loads its settings, and serves each of its affordances.
fn assemble<T: Thing>(
    name: String,
    thing: Arc<T>,
    context: &Context,
    settings_folder: Option<&Path>,
) -> Result<Assembled, ServerError> {
    let mut descriptor = T::descriptor();
    descriptor.properties.extend(thing.instance_properties());
    check_names(&name, &descriptor)?;
    if !descriptor.actions.is_empty() {
        let stop_all = super::stop_all::descriptor(&name, &context.invocations);
        descriptor.actions.push(stop_all);
    }
    check_health(&name, thing.as_ref(), &mut descriptor)?;
    let settings = settings::settings_file(&name, &thing, &descriptor, settings_folder)?;
    // What clients observing over Server-Sent Events may resume from.
    let (events, changes) = (
        EventLog::new(context.event_history),
        EventLog::new(context.event_history),
    );
    context.metrics.add_log(&name, "events", events.clone());
    context
        .metrics
        .add_log(&name, "properties", changes.clone());
    apply_history_option(&name, &mut descriptor, context)?;
    let histories = bind_properties(
        &name,
        thing.as_ref(),
        &descriptor,
        settings.as_ref(),
        &changes,
        context.data_folder.as_deref(),
    )?;
    if let Some(file) = &settings {
        settings::load_settings(&name, &thing, &descriptor, file)?;
    }
    let mut serving = Serving {
        name: &name,
        thing: &thing,
        descriptor: &descriptor,
        context,
        events,
        changes,
        histories,
        routes: RouteTable::default(),
        td: ThingDescription::new(&descriptor),
        streams: Vec::new(),
    };
    for kind in affordance::kinds() {
        (kind.serve)(&mut serving)?;
    }
    let Serving {
        events,
        mut routes,
        td: description,
        streams,
        ..
    } = serving;
    ws::serve(&name, &thing, &descriptor, &events, context, &mut routes);
    let readers: Vec<_> = descriptor
        .properties
        .iter()
        .map(|property| (property.name, property.access.clone()))
        .collect();
    let observed = thing.clone();
    let state = Arc::new(move || {
        readers
            .iter()
            .filter_map(|(name, access)| {
                let value = access(observed.as_ref()).read_json().ok()?;
                Some(((*name).to_owned(), value))
            })
            .collect()
    });
    Ok(Assembled {
        state,
        name,
        routes,
        description,
        lifecycle: thing,
        streams,
        settings,
    })
}

/// Every affordance name is a URL segment, not one the server uses under each Thing, and used
/// once.
fn check_names<T: Send + Sync + 'static>(
    thing: &str,
    descriptor: &ThingDescriptor<T>,
) -> Result<(), ServerError> {
    let names: Vec<&str> = affordance::kinds::<T>()
        .iter()
        .flat_map(|kind| (kind.names)(descriptor))
        .collect();
    for (index, name) in names.iter().enumerate() {
        let reason = layout::invalid_segment(name).or_else(|| {
            layout::RESERVED_AFFORDANCE_NAMES
                .contains(name)
                .then_some("the server uses this name under every Thing")
        });
        if let Some(reason) = reason {
            return Err(ServerError::InvalidAffordanceName {
                thing: thing.to_owned(),
                affordance: (*name).to_owned(),
                reason: reason.to_owned(),
            });
        }
        if names[..index].contains(name) {
            return Err(ServerError::DuplicateAffordance {
                thing: thing.to_owned(),
                affordance: (*name).to_owned(),
            });
        }
    }
    Ok(())
}

/// A property's history, with its disk log if asked for.
fn history<T>(
    thing: &str,
    property: &PropertyDescriptor<T>,
    options: HistoryOptions,
    data_folder: Option<&Path>,
) -> Result<History, ServerError> {
    let history = History::new(options);
    if !options.log {
        return Ok(history);
    }
    let name = property.name;
    let Some(folder) = data_folder else {
        return Err(ServerError::History(format!(
            "the history of {thing}.{name} is to be logged to disk, but the server has no data \
             folder (`data_folder`)"
        )));
    };
    let header = match property.unit {
        Some(unit) => format!("{name} [{unit}]"),
        None => name.to_owned(),
    };
    let log = HistoryLog::open(folder, thing, name, header).map_err(|error| {
        ServerError::History(format!("the history log of {thing}.{name}: {error}"))
    })?;
    Ok(history.with_log(log))
}

/// A Thing with `#[health]` gets `clear_fault`; an action that refuses while faulted needs a
/// health to ask.
fn check_health<T: Thing>(
    name: &str,
    thing: &T,
    descriptor: &mut ThingDescriptor<T>,
) -> Result<(), ServerError> {
    match descriptor.health {
        Some(health) => {
            health(thing).set_thing(name);
            descriptor
                .actions
                .push(super::clear_fault::descriptor(health));
        }
        None => {
            if let Some(action) = descriptor.actions.iter().find(|a| a.refuse_while_faulted) {
                return Err(ServerError::InvalidAffordanceName {
                    thing: name.to_owned(),
                    affordance: action.name.to_owned(),
                    reason: "it refuses to run while the Thing is faulted \
                             (`refuse_while_faulted`), but the Thing has no `#[health]` to say so"
                        .to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// The configuration's `history` for this Thing replaces its properties' attributes; a
/// property it names must exist.
fn apply_history_option<T>(
    thing: &str,
    descriptor: &mut ThingDescriptor<T>,
    context: &Context,
) -> Result<(), ServerError> {
    let Some(configured) = context.history.get(thing) else {
        return Ok(());
    };
    for (name, options) in configured {
        let Some(property) = descriptor.properties.iter_mut().find(|p| p.name == *name) else {
            let known: Vec<String> = descriptor
                .properties
                .iter()
                .map(|p| p.name.to_owned())
                .collect();
            let hint = super::strict::nearest(name, &known)
                .map(|nearest| format!("; did you mean `{nearest}`?"))
                .unwrap_or_default();
            return Err(ServerError::History(format!(
                "Thing {thing:?} has no property {name:?}{hint}"
            )));
        };
        property.history = Some(*options);
    }
    Ok(())
}

/// Gives each property its name, constraints, for settings the settings file, for
/// observable ones the log their changes go to, and its history if it keeps one (returned by
/// property name, for the history routes).
fn bind_properties<T>(
    name: &str,
    thing: &T,
    descriptor: &ThingDescriptor<T>,
    settings: Option<&Arc<SettingsFile>>,
    changes: &Arc<EventLog>,
    data_folder: Option<&Path>,
) -> Result<HashMap<&'static str, Arc<History>>, ServerError> {
    let mut histories = HashMap::new();
    for property in &descriptor.properties {
        let history = property
            .history
            .map(|options| history(name, property, options, data_folder))
            .transpose()?
            .map(Arc::new);
        if let Some(history) = &history {
            histories.insert(property.name, history.clone());
        }
        let binding = Binding {
            name: property.name.to_owned(),
            constraints: property.constraints.clone(),
            unit: property.unit,
            persist: settings
                .filter(|_| property.setting)
                .map(|file| file.clone() as Arc<dyn Persist>),
            changes: property
                .observable
                .then(|| (changes.clone(), Arc::from(property.name))),
            history,
        };
        if (property.access)(thing).bind(binding).is_err() {
            return Err(ServerError::AlreadyAdded {
                thing: name.to_owned(),
            });
        }
    }
    Ok(histories)
}
