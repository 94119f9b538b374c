//! ListOffsets (key 2) and DeleteRecords (key 21).
use super::wire::{Reader, Result, Writer};
use super::Context;

pub async fn list_offsets(_ctx: &Context, _version: i16, _r: &mut Reader) -> Result<Writer> {
    Err(super::not_served("ListOffsets"))
}
pub async fn delete_records(_ctx: &Context, _version: i16, _r: &mut Reader) -> Result<Writer> {
    Err(super::not_served("DeleteRecords"))
}
