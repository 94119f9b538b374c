//! The store's builder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Store;
use crate::config::StoreConfig;
use crate::error::Result;

/// Builds a [`Store`]'s configuration and opens it: `Store::builder(dir).cleaner_interval_ms(0).open()`.
#[derive(Debug)]
#[must_use]
pub struct StoreBuilder {
    dir: PathBuf,
    config: StoreConfig,
}

impl StoreBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: StoreConfig) -> StoreBuilder {
        self.config = config;
        self
    }

    /// The time source (see [`StoreConfig::clock`](StoreConfig#structfield.clock)).
    pub fn clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> StoreBuilder {
        self.config.clock = clock;
        self
    }

    /// See [`StoreConfig::flush_tick_ms`](StoreConfig#structfield.flush_tick_ms).
    pub fn flush_tick_ms(mut self, ms: u64) -> StoreBuilder {
        self.config.flush_tick_ms = ms;
        self
    }

    /// See [`StoreConfig::cleaner_interval_ms`](StoreConfig#structfield.cleaner_interval_ms); 0 disables
    /// the background cleaner.
    pub fn cleaner_interval_ms(mut self, ms: u64) -> StoreBuilder {
        self.config.cleaner_interval_ms = ms;
        self
    }

    /// See [`StoreConfig::offset_map_bytes`](StoreConfig#structfield.offset_map_bytes).
    pub fn offset_map_bytes(mut self, bytes: usize) -> StoreBuilder {
        self.config.offset_map_bytes = bytes;
        self
    }

    #[doc(hidden)]
    pub fn faults(mut self, faults: Option<Arc<crate::fault::FaultInjector>>) -> StoreBuilder {
        self.config.faults = faults;
        self
    }

    /// Opens the store ([`Store::open`]).
    pub fn open(self) -> Result<Store> {
        Store::open(self.dir, self.config)
    }
}

impl Store {
    /// A builder for the store in `dir`, starting from [`StoreConfig::default`].
    pub fn builder(dir: impl AsRef<Path>) -> StoreBuilder {
        StoreBuilder { dir: dir.as_ref().to_path_buf(), config: StoreConfig::default() }
    }
}
