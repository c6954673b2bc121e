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

/// `Debug` by name only, for a type whose fields say nothing useful (futures, services
/// holding shared state): `Name { .. }`. The caller has `std::fmt` in scope.
macro_rules! opaque_debug {
    ($name:ident $(<$($param:ident),+>)?) => {
        impl$(<$($param),+>)? fmt::Debug for $name$(<$($param),+>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

/// A named, opaque response future over a boxed one, in the way of tower's `opaque_future!`:
/// `Debug` without its state, `Future` by polling the box, and a crate-private `new` taking
/// the box.
macro_rules! opaque_future {
    ($(#[$doc:meta])* pub struct $name:ident(BoxFuture<$output:ty>);) => {
        $(#[$doc])*
        pub struct $name {
            inner: ::std::pin::Pin<
                Box<dyn ::std::future::Future<Output = $output> + Send + 'static>,
            >,
        }

        impl $name {
            pub(crate) fn new(
                inner: ::std::pin::Pin<
                    Box<dyn ::std::future::Future<Output = $output> + Send + 'static>,
                >,
            ) -> Self {
                Self { inner }
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }

        impl ::std::future::Future for $name {
            type Output = $output;

            fn poll(
                mut self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<Self::Output> {
                self.inner.as_mut().poll(cx)
            }
        }
    };
}

/// `poll_ready` for a service that is always ready: it holds no inner service, or one that
/// is always ready. The caller has `std::task::{Context, Poll}` in scope.
macro_rules! always_ready {
    () => {
        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
    };
}

/// `poll_ready` for a wrapping service: ready when its inner service, the field `inner`, is.
/// The caller has `std::task::{Context, Poll}` in scope.
macro_rules! forward_ready {
    () => {
        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }
    };
}

/// The items of `Service<$request>` for a `Clone + Send + 'static` service that answers every
/// request with its own `async fn answer(&self, $request) -> Response<Body>`: always ready,
/// never failing, its future boxed. The caller has `std::task::{Context, Poll}` in scope.
macro_rules! answer_service {
    ($request:ty) => {
        type Response = ::http::Response<$crate::body::Body>;
        type Error = ::std::convert::Infallible;
        type Future = ::std::pin::Pin<
            Box<dyn ::std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
        >;

        always_ready!();

        fn call(&mut self, req: $request) -> Self::Future {
            let this = self.clone();
            Box::pin(async move { Ok(this.answer(req).await) })
        }
    };
}

/// `Layer<S>` for a `Copy` layer whose service is `$service { inner, .. }` with each named
/// field copied from the layer. The caller has `tower_layer::Layer` in scope.
macro_rules! copy_layer {
    ($layer:ident => $service:ident { $($field:ident),+ }) => {
        impl<S> Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service {
                    inner,
                    $($field: self.$field,)+
                }
            }
        }
    };
}

/// Builder setters of one shape: each `fn name(arg: Type) => field` becomes
/// `pub fn name(mut self, arg: Type) -> Self` setting `self.field` to `arg`, or to the
/// expression after `=` (`=> limiter = Some(limiter)`). The doc comments and attributes
/// before each setter stay on it, so rustdoc shows every method with its own docs.
macro_rules! setters {
    ($(
        $(#[$attr:meta])*
        $vis:vis fn $name:ident($arg:ident: $ty:ty) => $field:ident $(= $value:expr)?;
    )*) => {
        $(
            $(#[$attr])*
            $vis fn $name(mut self, $arg: $ty) -> Self {
                self.$field = setters!(@value $arg $(, $value)?);
                self
            }
        )*
    };
    (@value $arg:ident) => {
        $arg
    };
    (@value $arg:ident, $value:expr) => {
        $value
    };
}

/// `Debug` as `Name { field: .., .. }` with the listed fields only, each either a field of
/// the same name or `name: path.to.field` (a field of a field): for a type with fields that
/// must not be shown (secrets, handlers) or say nothing. The caller has `std::fmt` in scope.
macro_rules! debug_fields {
    ($name:ident $(<$($param:ident),+>)? { $($field:ident $(: $($path:ident).+)?),+ $(,)? }) => {
        impl$(<$($param),+>)? fmt::Debug for $name$(<$($param),+>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(stringify!($field), &debug_fields!(@get self $field $(: $($path).+)?)))+
                    .finish_non_exhaustive()
            }
        }
    };
    (@get $this:ident $field:ident) => {
        $this.$field
    };
    (@get $this:ident $field:ident: $($path:ident).+) => {
        $this.$($path).+
    };
}

/// Trait methods that a smart pointer (`Arc<T>`, `Box<T>`) implements by calling the same
/// method of the value it points to: each `fn name(&self, arg: Type) -> Return;` becomes
/// `(**self).name(arg)`.
macro_rules! forward_to_pointee {
    ($(fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;)*) => {
        $(
            fn $name(&self $(, $arg: $ty)*) -> $ret {
                (**self).$name($($arg),*)
            }
        )*
    };
}

/// An error type that wraps the error of a backend (a store, a registry) as its `source`:
/// `Debug`, a public `new` taking any error, `Display` as `$prefix: {source}`, and `Error`
/// with the wrapped error as its source.
macro_rules! source_error {
    (
        $(#[$attr:meta])*
        pub struct $name:ident($prefix:literal);
        $(#[$new_attr:meta])*
        pub fn new;
    ) => {
        $(#[$attr])*
        #[derive(Debug)]
        pub struct $name {
            source: $crate::body::BoxError,
        }

        impl $name {
            $(#[$new_attr])*
            pub fn new(source: impl Into<$crate::body::BoxError>) -> Self {
                Self {
                    source: source.into(),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!($prefix, ": {}"), self.source)
            }
        }

        impl ::std::error::Error for $name {
            fn source(&self) -> Option<&(dyn ::std::error::Error + 'static)> {
                Some(&*self.source)
            }
        }
    };
}
