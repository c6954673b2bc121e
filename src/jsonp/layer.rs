use tower_layer::Layer;

use super::Jsonp;

/// A [`Layer`] that wraps JSON responses for JSONP callers; see the [module docs](super).
///
/// [`JsonpLayer::new`] is on; [`JsonpLayer::disabled`] passes every request and response
/// through untouched (no `callback` is read), so that a stack can keep one type whether
/// JSONP is configured or not.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct JsonpLayer {
    enabled: bool,
}

impl Default for JsonpLayer {
    fn default() -> Self {
        Self::disabled()
    }
}

impl JsonpLayer {
    /// A JSONP layer that is on.
    pub fn new() -> Self {
        Self { enabled: true }
    }

    /// A JSONP layer that is off: it passes everything through.
    pub fn disabled() -> Self {
        Self { enabled: false }
    }

    /// Turns JSONP on or off.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}

copy_layer!(JsonpLayer => Jsonp { enabled });
