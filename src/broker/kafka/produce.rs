//! Produce (key 0).
use super::wire::{Reader, Result};
use super::{Answer, Context};

pub async fn handle(_ctx: &Context, _version: i16, _r: &mut Reader) -> Result<Answer> {
    Err(super::not_served("Produce"))
}
