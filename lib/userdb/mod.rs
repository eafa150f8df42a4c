//! userdb
