//! A camera's GenICam features as properties: which ones, what the node map says about them
//! (type, range, increment, entries, unit, access), and how Aravis's errors become HTTP
//! statuses.

use aravis::glib;
use aravis::glib::prelude::*;
use aravis::prelude::*;
use aravis::{Camera, GcBoolean, GcEnumeration, GcFeatureNode, GcFloat, GcInteger, GcNode};
use axum::http::StatusCode;

use crate::Property;
use crate::property::SetError;

/// The features every camera gets as properties when it has them: (property name, GenICam
/// names to try in order, unit when the node map gives none). Units follow the GenICam
/// Standard Features Naming Convention (SFNC): exposure in microseconds, rates in hertz.
pub(super) const STANDARD: &[(&str, &[&str], Option<&str>)] = &[
    ("pixel_format", &["PixelFormat"], None),
    (
        "exposure_time",
        &["ExposureTime", "ExposureTimeAbs"],
        Some("µs"),
    ),
    ("gain", &["Gain", "GainRaw"], None),
    ("width", &["Width"], None),
    ("height", &["Height"], None),
    ("offset_x", &["OffsetX"], None),
    ("offset_y", &["OffsetY"], None),
    ("binning_horizontal", &["BinningHorizontal"], None),
    ("binning_vertical", &["BinningVertical"], None),
    (
        "acquisition_frame_rate",
        &["AcquisitionFrameRate", "AcquisitionFrameRateAbs"],
        Some("Hz"),
    ),
    ("trigger_mode", &["TriggerMode"], None),
    ("trigger_source", &["TriggerSource"], None),
];

/// Features that change the image's size or layout: written with acquisition paused (most
/// cameras lock them while acquiring), and the stream's buffers are made again.
const LAYOUT: &[&str] = &[
    "PixelFormat",
    "Width",
    "Height",
    "OffsetX",
    "OffsetY",
    "BinningHorizontal",
    "BinningVertical",
    "DecimationHorizontal",
    "DecimationVertical",
];

/// What a feature holds, with its limits from the node map.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    /// A bound the node map does not give is `None` (and not in the TD).
    Integer {
        min: Option<i64>,
        max: Option<i64>,
        inc: i64,
    },
    Float {
        min: Option<f64>,
        max: Option<f64>,
    },
    Enumeration(Vec<String>),
    Boolean,
    Text,
}

/// One feature as the camera describes it.
#[derive(Debug, Clone)]
pub(super) struct FeatureInfo {
    /// The GenICam name, such as `ExposureTimeAbs`.
    pub(super) name: String,
    /// The property's name, such as `exposure_time`.
    pub(super) property: String,
    pub(super) title: Option<String>,
    pub(super) description: Option<String>,
    pub(super) unit: Option<String>,
    pub(super) kind: Kind,
    pub(super) read_only: bool,
    pub(super) layout: bool,
}

/// A feature's value, held by the property the server serves.
#[derive(Clone)]
pub(super) enum FeatureValue {
    Integer(Property<i64>),
    Float(Property<f64>),
    Text(Property<String>),
    Boolean(Property<bool>),
}

/// A value to write to a feature.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Integer(i64),
    Float(f64),
    Text(String),
    Boolean(bool),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Integer(v) => write!(f, "{v}"),
            Self::Float(v) => write!(f, "{v}"),
            Self::Text(v) => write!(f, "{v:?}"),
            Self::Boolean(v) => write!(f, "{v}"),
        }
    }
}

impl FeatureValue {
    pub(super) fn property(&self) -> &dyn crate::property::DynProperty {
        match self {
            Self::Integer(p) => p,
            Self::Float(p) => p,
            Self::Text(p) => p,
            Self::Boolean(p) => p,
        }
    }

    /// The value the property holds now.
    pub(super) fn get(&self) -> Value {
        match self {
            Self::Integer(p) => Value::Integer(p.get()),
            Self::Float(p) => Value::Float(p.get()),
            Self::Text(p) => Value::Text(p.get()),
            Self::Boolean(p) => Value::Boolean(p.get()),
        }
    }

    /// Stores a value read from the camera (after another feature's write changed it).
    pub(super) fn publish(&self, value: Value) {
        let _ = match (self, value) {
            (Self::Integer(p), Value::Integer(v)) if p.get() != v => p.publish(v),
            (Self::Float(p), Value::Float(v)) if p.get() != v => p.publish(v),
            (Self::Text(p), Value::Text(v)) if p.get() != v => p.publish(v),
            (Self::Boolean(p), Value::Boolean(v)) if p.get() != v => p.publish(v),
            _ => Ok(()),
        };
    }
}

/// `ExposureTimeAbs` as `exposure_time_abs`; `GevSCPSPacketSize` as `gev_scps_packet_size`.
pub(super) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let previous = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let starts_word = previous
                .is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
                || (previous.is_some_and(|p| p.is_ascii_uppercase())
                    && next.is_some_and(char::is_ascii_lowercase));
            if starts_word {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

/// The node map's description of `name`, or why it cannot be a property (not there, not
/// implemented, not available now, or a command or register).
pub(super) fn describe(
    camera: &Camera,
    name: &str,
    property: String,
    default_unit: Option<&str>,
) -> Result<FeatureInfo, String> {
    let device = camera
        .device()
        .ok_or_else(|| "the camera has no device".to_owned())?;
    let node: GcNode = device
        .feature(name)
        .ok_or_else(|| format!("the camera has no feature {name}"))?;
    let feature = node
        .dynamic_cast_ref::<GcFeatureNode>()
        .ok_or_else(|| format!("{name} is not a feature"))?;
    if !feature.is_implemented().unwrap_or(false) {
        return Err(format!("the camera does not implement {name}"));
    }
    let access = feature.actual_access_mode();
    let read_only = access == aravis::GcAccessMode::Ro;
    let text =
        |value: Option<glib::GString>| value.map(|v| v.to_string()).filter(|v| !v.is_empty());
    let mut unit = None;
    let kind = if let Some(enumeration) = node.dynamic_cast_ref::<GcEnumeration>() {
        let entries = enumeration
            .dup_available_string_values()
            .map_err(|error| format!("{name}: {error}"))?;
        Kind::Enumeration(entries.into_iter().map(|e| e.to_string()).collect())
    } else if node.dynamic_cast_ref::<GcBoolean>().is_some() {
        Kind::Boolean
    } else if let Some(float) = node.dynamic_cast_ref::<GcFloat>() {
        unit = text(float.unit());
        Kind::Float {
            min: GcFloatExt::min(float).ok().filter(|v| v.is_finite()),
            max: GcFloatExt::max(float).ok().filter(|v| v.is_finite()),
        }
    } else if let Some(integer) = node.dynamic_cast_ref::<GcInteger>() {
        unit = text(integer.unit());
        Kind::Integer {
            min: GcIntegerExt::min(integer).ok(),
            max: GcIntegerExt::max(integer).ok(),
            inc: integer.inc().unwrap_or(1).max(1),
        }
    } else if node.dynamic_cast_ref::<aravis::GcString>().is_some() {
        Kind::Text
    } else {
        return Err(format!(
            "{name} is a {}, which is not served as a property",
            node.type_().name()
        ));
    };
    Ok(FeatureInfo {
        name: name.to_owned(),
        property,
        title: text(feature.display_name()),
        description: text(feature.description()).or_else(|| text(feature.tooltip())),
        unit: unit.or_else(|| default_unit.map(str::to_owned)),
        kind,
        read_only,
        layout: LAYOUT.contains(&name),
    })
}

/// The feature's value on the camera.
pub(super) fn read(camera: &Camera, info: &FeatureInfo) -> Result<Value, glib::Error> {
    let name = info.name.as_str();
    Ok(match info.kind {
        Kind::Integer { .. } => Value::Integer(camera.integer(name)?),
        Kind::Float { .. } => Value::Float(camera.float(name)?),
        Kind::Enumeration(_) | Kind::Text => Value::Text(camera.string(name)?.to_string()),
        Kind::Boolean => Value::Boolean(camera.boolean(name)?),
    })
}

/// Writes `value` to the feature on the camera.
pub(super) fn write(camera: &Camera, info: &FeatureInfo, value: &Value) -> Result<(), glib::Error> {
    let name = info.name.as_str();
    match value {
        Value::Integer(v) => camera.set_integer(name, *v),
        Value::Float(v) => camera.set_float(name, *v),
        Value::Text(v) => camera.set_string(name, v),
        Value::Boolean(v) => camera.set_boolean(name, *v),
    }
}

/// A sentence about the feature for its property's description: the camera's own words, the
/// GenICam name, and the entries of an enumeration.
pub(super) fn description(info: &FeatureInfo) -> String {
    let mut text = info.description.clone().unwrap_or_default();
    if !text.is_empty() && !text.ends_with('.') {
        text.push('.');
    }
    if !text.is_empty() {
        text.push(' ');
    }
    text.push_str(&format!("GenICam feature `{}`", info.name));
    if let Kind::Enumeration(entries) = &info.kind {
        text.push_str(&format!("; one of: {}", entries.join(", ")));
    }
    if info.layout {
        text.push_str("; acquisition pauses while it is written");
    }
    text.push('.');
    text
}

/// Whether a glib error says the camera is gone (rather than refusing a value).
pub(super) fn is_disconnection(error: &glib::Error) -> bool {
    matches!(
        error.kind::<aravis::DeviceError>(),
        Some(
            aravis::DeviceError::NotConnected
                | aravis::DeviceError::Timeout
                | aravis::DeviceError::TransferError
        )
    )
}

/// What a client is told when the camera refuses a write: 422 for a value out of the
/// camera's range or not one of its entries, 503 when the camera does not answer, and 409
/// (with the camera's reason) for anything else it refuses, such as a feature locked while
/// acquiring.
pub(super) fn refusal(info: &FeatureInfo, value: &Value, error: &glib::Error) -> SetError {
    let reason = error.message().trim().to_owned();
    if is_disconnection(error) {
        return SetError::unavailable(format!(
            "the camera did not answer writing {} = {value} ({reason}); the value was not set",
            info.name
        ));
    }
    let status = match error.kind::<aravis::GcError>() {
        Some(aravis::GcError::OutOfRange | aravis::GcError::EnumEntryNotFound) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        _ => StatusCode::CONFLICT,
    };
    SetError::new(
        status,
        format!("the camera refused {} = {value}: {reason}", info.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cameras_refusals_become_422_409_and_503() {
        let info = FeatureInfo {
            name: "OffsetX".into(),
            property: "offset_x".into(),
            title: None,
            description: None,
            unit: None,
            kind: Kind::Integer {
                min: Some(0),
                max: Some(2048),
                inc: 1,
            },
            read_only: false,
            layout: true,
        };
        let value = Value::Integer(2000);
        let status = |error: glib::Error| refusal(&info, &value, &error).status().as_u16();
        let out_of_range = glib::Error::new(
            aravis::GcError::OutOfRange,
            "[OffsetX] Value '2000' greater than allowed maximum '1536'",
        );
        let message = refusal(&info, &value, &out_of_range).to_string();
        assert!(
            message.contains("OffsetX = 2000") && message.contains("1536"),
            "{message}"
        );
        assert_eq!(status(out_of_range), 422);
        assert_eq!(
            status(glib::Error::new(aravis::GcError::EnumEntryNotFound, "no")),
            422
        );
        // Locked while acquiring, read-only now, or anything else the camera refuses.
        assert_eq!(
            status(glib::Error::new(aravis::GcError::ReadOnly, "locked")),
            409
        );
        assert_eq!(
            status(glib::Error::new(
                aravis::DeviceError::ProtocolError,
                "access denied"
            )),
            409
        );
        assert_eq!(
            status(glib::Error::new(
                aravis::DeviceError::InvalidParameter,
                "no"
            )),
            409
        );
        // The camera does not answer.
        assert_eq!(
            status(glib::Error::new(aravis::DeviceError::Timeout, "timeout")),
            503
        );
        assert_eq!(
            status(glib::Error::new(aravis::DeviceError::NotConnected, "gone")),
            503
        );
    }

    #[test]
    fn genicam_names_become_snake_case() {
        assert_eq!(snake_case("ExposureTimeAbs"), "exposure_time_abs");
        assert_eq!(snake_case("GevSCPSPacketSize"), "gev_scps_packet_size");
        assert_eq!(snake_case("OffsetX"), "offset_x");
        assert_eq!(snake_case("Gain"), "gain");
        assert_eq!(snake_case("LUTEnable"), "lut_enable");
        assert_eq!(snake_case("Line0Mode"), "line0_mode");
    }
}
