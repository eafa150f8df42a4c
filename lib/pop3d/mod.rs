//! pop3d
