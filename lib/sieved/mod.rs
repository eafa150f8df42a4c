//! kmp-sieved.
