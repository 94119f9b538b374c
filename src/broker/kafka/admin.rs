//! CreateTopics (19), DeleteTopics (20), DescribeConfigs (32), IncrementalAlterConfigs (44).
use super::wire::{Reader, Result, Writer};
use super::Context;

pub async fn create_topics(_ctx: &Context, _version: i16, _r: &mut Reader) -> Result<Writer> {
    Err(super::not_served("CreateTopics"))
}
pub async fn delete_topics(_ctx: &Context, _version: i16, _r: &mut Reader) -> Result<Writer> {
    Err(super::not_served("DeleteTopics"))
}
pub fn describe_configs(_ctx: &Context, _version: i16, _r: &mut Reader) -> Result<Writer> {
    Err(super::not_served("DescribeConfigs"))
}
pub async fn incremental_alter_configs(_ctx: &Context, _version: i16, _r: &mut Reader) -> Result<Writer> {
    Err(super::not_served("IncrementalAlterConfigs"))
}
