use labthings::{Property, Thing};

#[derive(Thing)]
struct Logger {
    #[property(history = "10 parsecs")]
    unknown_unit: Property<f64>,
    #[property(history = 0)]
    no_samples: Property<f64>,
    #[property(history = 1.5)]
    fraction: Property<f64>,
    #[property(history_interval = "1 s")]
    interval_alone: Property<f64>,
    #[property(history_log)]
    log_alone: Property<f64>,
}

fn main() {}
