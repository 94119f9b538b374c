//! Fetch (key 1).
use super::wire::{Reader, Result, Writer};
use super::Context;

pub async fn handle(_ctx: &Context, _version: i16, _r: &mut Reader) -> Result<Writer> {
    Err(super::not_served("Fetch"))
}
