use labthings::stream::MjpegStream;
use labthings::{Property, Thing};

/// A spectrometer.
///
/// With a longer description.
#[derive(Thing)]
#[thing(title = "Spectrometer", on_start = Self::open, on_stop = Self::close)]
struct Spectrometer {
    /// Integration time in ms.
    #[property(min = 1, max = 10_000, multiple_of = 1, unit = "ms")]
    integration_ms: Property<u32>,
    #[property(exclusive_min = -1.5, exclusive_max = 2.5)]
    offset: Property<Option<f64>>,
    #[property(read_only, observable = false, rename = "serial-number", title = "Serial")]
    serial: Property<String>,
    #[property(min_length = 1, max_length = 16, pattern = "^[A-Z]+$")]
    label: Property<String>,
    #[setting]
    averages: Property<u16>,
    #[stream]
    preview: MjpegStream,
    #[stream(ringbuffer = 3, rename = "spectrum-image")]
    spectrum: MjpegStream,
    /// Not an affordance: driver state.
    _port: String,
}

impl Spectrometer {
    async fn open(&self) -> Result<(), std::io::Error> {
        Ok(())
    }
    async fn close(&self) {}
}

fn main() {
    let descriptor = <Spectrometer as Thing>::descriptor();
    assert_eq!(descriptor.title, "Spectrometer");
    assert_eq!(descriptor.properties.len(), 5);
    assert_eq!(descriptor.properties[2].name, "serial-number");
    assert_eq!(descriptor.properties[0].unit, Some("ms"));
    assert_eq!(descriptor.properties[1].unit, None);
    assert!(descriptor.properties[2].read_only && !descriptor.properties[2].observable);
    assert!(descriptor.properties[4].setting);
    assert_eq!(descriptor.streams[1].name, "spectrum-image");
    assert_eq!(descriptor.streams[1].ringbuffer, Some(3));
}
