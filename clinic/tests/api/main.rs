//! End-to-end tests of the clinic server: a real server on 127.0.0.1, real
//! sockets, reqwest as the client, `CareRecord` + the sync wire format as a
//! minimal device. One test binary, so the suite links once.

mod common;

mod access;
mod alerts_page;
mod at_rest;
mod clinician;
mod clock;
mod dashboard;
mod enrollment;
mod fhir;
mod growth;
mod hostile;
mod operations;
mod packs;
mod sync;
mod tls;
mod traffic;
