//! InitProducerId (key 22).
use super::wire::{Reader, Result, Writer};
use super::Context;

/// Advertised only once producer ids are durable.
pub(crate) const SUPPORTED: &[(i16, i16, i16)] = &[];

pub async fn handle(_ctx: &Context, _version: i16, _r: &mut Reader) -> Result<Writer> {
    Err(super::not_served("InitProducerId"))
}
