//! Sparkify warehouse toolkit: turns the music app's JSON event logs and a JSON song catalogue
//! into a star-schema warehouse and answers the business's questions about it.
//!
//! The binaries in `src/bin` are thin: they parse flags and call into these modules.
//!
//! - [`config`] reads `dwh.cfg`; [`cli`] holds what every binary shares.
//! - [`schema`] defines every table once; [`sql`] holds every statement and the dialects.
//! - [`warehouse`] puts each engine behind one trait; [`tls`] secures the server engines.
//! - [`source`] finds the input files (on disk or, through [`s3`], in a bucket), [`parse`], [`jsonpaths`] and [`record`] turn their bytes
//!   into typed rows or rejects, [`batch`] into Arrow batches, [`load`] streams them into
//!   staging; [`stats`] is what a load of one source did, whoever loaded it.
//! - [`create_tables`], [`etl`] and [`analysis`] are the pipeline's steps, [`checks`] the
//!   quality checks every load ends with, [`ledger`] what decides which files a load reads,
//!   [`ownership`] which tables are the toolkit's to drop or rewrite;
//!   [`report`] renders their results and [`progress`]
//!   shows how far they are.
//! - [`gen_data`] writes synthetic source data in the original layout.
//! - [`iac`] provisions and removes Redshift Serverless, with clients from [`aws`];
//!   [`config_edit`] writes what it learns back into `dwh.cfg`.

pub mod analysis;
pub mod aws;
pub mod batch;
pub mod charts;
pub mod checks;
pub mod cli;
pub mod config;
pub mod config_edit;
pub mod create_tables;
pub mod etl;
pub mod files;
pub mod gen_data;
pub mod html_report;
pub mod iac;
pub mod interrupt;
pub mod jsonpaths;
pub mod ledger;
pub mod load;
pub mod machine;
pub mod ownership;
pub mod parse;
pub mod pg_auth;
pub mod progress;
pub mod record;
pub mod redact;
pub mod report;
pub mod s3;
pub mod schema;
pub mod source;
pub mod sql;
pub mod stats;
pub mod tls;
pub mod warehouse;
pub mod words;
