//! [`AlreadyBound`]: a property or an event belongs to one Thing on one server. Its own file
//! because both `property` and `event` say it, and neither imports the other for it.

/// A property or an event was given to a second Thing or server; it can belong to one only.
#[derive(Debug)]
pub struct AlreadyBound;
