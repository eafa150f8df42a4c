//! authd
