//! The device's controls: found at start (with one ioctl of our own, see `list_controls`),
//! served as properties.

use std::io;

use linuxvideo::Device;
use linuxvideo::controls::{Cid, ControlDesc, ControlFlags, CtrlType};

use crate::Property;
use crate::property::DynProperty;

/// One V4L2 control, served as a property.
#[derive(Clone)]
pub(super) struct Control {
    pub(super) desc: ControlInfo,
    pub(super) value: ControlValue,
}

#[derive(Clone)]
pub(super) struct ControlInfo {
    pub(super) id: Cid,
    pub(super) name: String,
    pub(super) label: String,
    pub(super) kind: CtrlType,
    pub(super) minimum: i32,
    pub(super) maximum: i32,
    pub(super) step: i32,
    pub(super) default: i32,
    pub(super) read_only: bool,
    pub(super) menu: Vec<(u32, String)>,
}

#[derive(Clone)]
pub(super) enum ControlValue {
    Integer(Property<i64>),
    Boolean(Property<bool>),
}

impl ControlValue {
    pub(super) fn property(&self) -> &dyn DynProperty {
        match self {
            Self::Integer(property) => property,
            Self::Boolean(property) => property,
        }
    }

    pub(super) fn raw(&self) -> i32 {
        match self {
            Self::Integer(property) => i32::try_from(property.get()).unwrap_or_default(),
            Self::Boolean(property) => i32::from(property.get()),
        }
    }
}

/// The device's integer, boolean and menu controls (others, such as buttons and class
/// headings, are not properties).
pub(super) fn list_controls(device: &Device) -> io::Result<Vec<ControlInfo>> {
    let served = [
        CtrlType::INTEGER,
        CtrlType::BOOLEAN,
        CtrlType::MENU,
        CtrlType::INTEGER_MENU,
    ];
    let mut controls = Vec::new();
    // linuxvideo 0.3 starts its walk at V4L2_CID_BASE with V4L2_CTRL_FLAG_NEXT_CTRL, which asks
    // for the controls *after* it: the first user control (Brightness, whose id is the base)
    // is never listed. Ask for it by its id.
    if let Ok(brightness) = query_control(device, V4L2_CID_BASE)
        && brightness.flags & V4L2_CTRL_FLAG_DISABLED == 0
        && brightness.kind == CtrlType::INTEGER
    {
        controls.push(brightness.info(Cid::BRIGHTNESS));
    }
    for description in device.controls() {
        let description = description?;
        let kind = description.control_type();
        if !served.contains(&kind) || description.id() == Cid::BRIGHTNESS {
            continue;
        }
        let menu = if kind == CtrlType::MENU {
            device
                .enumerate_menu(&description)
                .filter_map(Result::ok)
                .map(|item| (item.index(), item.name().to_owned()))
                .collect()
        } else {
            Vec::new()
        };
        controls.push(info_of(&description, menu));
    }
    Ok(controls)
}

const V4L2_CID_BASE: u32 = 0x0098_0900;
const V4L2_CTRL_FLAG_DISABLED: u32 = 0x0001;
const V4L2_CTRL_FLAG_READ_ONLY: u32 = 0x0004;

/// `struct v4l2_queryctrl` (linux/videodev2.h).
#[repr(C)]
pub(super) struct QueryCtrl {
    id: u32,
    kind: CtrlType,
    name: [u8; 32],
    minimum: i32,
    maximum: i32,
    step: i32,
    default_value: i32,
    flags: u32,
    reserved: [u32; 2],
}

impl QueryCtrl {
    fn info(&self, id: Cid) -> ControlInfo {
        let end = self.name.iter().position(|b| *b == 0).unwrap_or(32);
        let label = String::from_utf8_lossy(&self.name[..end]).into_owned();
        ControlInfo {
            id,
            name: property_name(&label),
            label,
            kind: self.kind,
            minimum: self.minimum,
            maximum: self.maximum,
            step: self.step.max(1),
            default: self.default_value,
            read_only: self.flags & V4L2_CTRL_FLAG_READ_ONLY != 0,
            menu: Vec::new(),
        }
    }
}

/// `VIDIOC_QUERYCTRL` for exactly `id`: the crate's only `unsafe`.
#[allow(unsafe_code)]
fn query_control(device: &Device, id: u32) -> io::Result<QueryCtrl> {
    use std::os::fd::AsRawFd;
    // _IOWR('V', 36, struct v4l2_queryctrl): read and write, 68 bytes, type 'V', number 36.
    const VIDIOC_QUERYCTRL: u32 = (3 << 30) | (68 << 16) | ((b'V' as u32) << 8) | 36;
    const _: () = assert!(std::mem::size_of::<QueryCtrl>() == 68);
    let mut query = QueryCtrl {
        id,
        kind: CtrlType::INTEGER,
        name: [0; 32],
        minimum: 0,
        maximum: 0,
        step: 0,
        default_value: 0,
        flags: 0,
        reserved: [0; 2],
    };
    // SAFETY: the request's size and direction are those of `QueryCtrl`, a `repr(C)` copy of
    // the kernel's struct (size checked above); the pointer is valid and exclusive for the
    // call; the file descriptor is the open device's.
    let result = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            VIDIOC_QUERYCTRL as _,
            std::ptr::from_mut(&mut query),
        )
    };
    if result == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(query)
}

fn info_of(description: &ControlDesc, menu: Vec<(u32, String)>) -> ControlInfo {
    ControlInfo {
        id: description.id(),
        name: property_name(description.name()),
        label: description.name().to_owned(),
        kind: description.control_type(),
        minimum: description.minimum(),
        maximum: description.maximum(),
        step: description.step().max(1),
        default: description.default_value(),
        read_only: description.flags().contains(ControlFlags::READ_ONLY),
        menu,
    }
}

/// `Exposure Time, Absolute` → `exposure_time_absolute`.
fn property_name(label: &str) -> String {
    let mut name = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('_') {
            name.push('_');
        }
    }
    while name.ends_with('_') {
        name.pop();
    }
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "control_");
    }
    name
}

pub(super) fn describe(info: &ControlInfo) -> String {
    let kind = match info.kind {
        CtrlType::BOOLEAN => "on or off",
        CtrlType::MENU | CtrlType::INTEGER_MENU => "a menu",
        _ => "an integer",
    };
    let mut text = format!(
        "The device's control \"{}\" ({kind}; default {}).",
        info.label, info.default
    );
    if !info.menu.is_empty() {
        let items: Vec<String> = info
            .menu
            .iter()
            .map(|(index, name)| format!("{index}: {name}"))
            .collect();
        text.push_str(&format!(" Values: {}.", items.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_names_become_url_segments() {
        assert_eq!(property_name("Brightness"), "brightness");
        assert_eq!(
            property_name("Exposure Time, Absolute"),
            "exposure_time_absolute"
        );
        assert_eq!(property_name("White Balance (Auto)"), "white_balance_auto");
        assert_eq!(property_name("3D Noise"), "control_3d_noise");
        assert_eq!(property_name("!!"), "control_");
    }
}
