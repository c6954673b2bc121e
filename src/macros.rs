/// `get_ref`, `get_mut` and `into_inner` for a wrapping service whose inner service is the
/// field `inner` of type `$inner`.
macro_rules! inner_service_accessors {
    ($inner:ident) => {
        /// A reference to the inner service.
        pub fn get_ref(&self) -> &$inner {
            &self.inner
        }

        /// A mutable reference to the inner service.
        pub fn get_mut(&mut self) -> &mut $inner {
            &mut self.inner
        }

        /// The inner service.
        pub fn into_inner(self) -> $inner {
            self.inner
        }
    };
}
