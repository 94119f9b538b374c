//! `load.api=batch`: records handed to librdkafka with `rd_kafka_produce_batch`, librdkafka's own
//! API for an application that has many records at once (the `rdkafka` crate does not wrap it).
//! Each call passes `batch.num.messages` records for one partition; librdkafka copies each value
//! (`RD_KAFKA_MSG_F_COPY`, as `send` does), stamps them with one CreateTime and enqueues them
//! under one lock, where `send` takes the topic by name, runs the partitioner and reads the clock
//! for every record. Delivery reports are the producer's as with `send`.
//!
//! The only `unsafe` of this program: the FFI calls, kept to this module.

use std::ffi::CString;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, Producer};

use crate::{fail, Deliveries, STALL};

/// librdkafka's handle of one topic, destroyed on drop.
pub struct TopicHandle(*mut rd::rd_kafka_topic_t);

impl TopicHandle {
    pub fn new(producer: &BaseProducer<Deliveries>, topic: &str) -> TopicHandle {
        let name = CString::new(topic).unwrap_or_else(|_| fail("a topic name with a NUL byte"));
        // SAFETY: the client pointer is the producer's, alive for the producer's lifetime, which
        // outlives this handle (dropped first in `produce`); a null configuration means the
        // topic's defaults; librdkafka copies the name.
        let rkt =
            unsafe { rd::rd_kafka_topic_new(producer.client().native_ptr(), name.as_ptr(), std::ptr::null_mut()) };
        if rkt.is_null() {
            fail(&format!("rd_kafka_topic_new({topic}) failed"));
        }
        TopicHandle(rkt)
    }
}

impl Drop for TopicHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from rd_kafka_topic_new and is destroyed once.
        unsafe { rd::rd_kafka_topic_destroy(self.0) }
    }
}

/// Enqueues `count` copies of `value` to `partition`, blocking while librdkafka's queue is full
/// (`RD_KAFKA_MSG_F_BLOCK`: with `delivery.report.only.error=true` librdkafka frees delivered
/// records in its own thread, so the queue drains without this thread polling).
pub fn produce(
    topic: &TopicHandle,
    partition: i32,
    value: &[u8],
    count: usize,
    messages: &mut Vec<rd::rd_kafka_message_t>,
) {
    messages.clear();
    messages.extend((0..count).map(|_| rd::rd_kafka_message_t {
        err: rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
        rkt: std::ptr::null_mut(),
        partition,
        payload: value.as_ptr() as *mut _,
        len: value.len(),
        key: std::ptr::null_mut(),
        key_len: 0,
        offset: 0,
        _private: std::ptr::null_mut(),
    }));
    let flags = rd::RD_KAFKA_MSG_F_COPY | rd::RD_KAFKA_MSG_F_BLOCK;
    // SAFETY: `messages` is a valid array of `messages.len()` messages whose payloads point at
    // `value`, alive for the call; RD_KAFKA_MSG_F_COPY makes librdkafka copy each payload before
    // returning, so nothing is borrowed past the call. The topic handle is alive.
    let n = unsafe { rd::rd_kafka_produce_batch(topic.0, partition, flags, messages.as_mut_ptr(), count as i32) };
    if n.max(0) as usize != count {
        let err = messages.iter().find(|m| m.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR);
        fail(&format!("rd_kafka_produce_batch enqueued {n} of {count}: {:?}", err.map(|m| m.err)));
    }
}

/// librdkafka's `rd_kafka_flush`: waits (up to `STALL`) until every record is delivered or failed;
/// it returns as soon as that is so (the `rdkafka` crate's `flush` polls in steps of 100 ms).
pub fn flush(producer: &BaseProducer<Deliveries>) {
    // SAFETY: the client pointer is the producer's, alive for the call.
    let err = unsafe { rd::rd_kafka_flush(producer.client().native_ptr(), STALL.as_millis() as i32) };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        fail(&format!("flush: {err:?}"));
    }
}

/// `load.api=batch` for `consume`: the consumer's queue read with `rd_kafka_consume_batch_queue`,
/// librdkafka's call returning up to a buffer's worth of records at once (the `rdkafka` crate's
/// `poll` returns one record per call, each paying for the queue's lock and a clock read).
pub struct ConsumerQueue(*mut rd::rd_kafka_queue_t);

impl ConsumerQueue {
    /// The queue of `consumer`, which must outlive it (and must not be polled otherwise).
    pub fn new(consumer: &BaseConsumer) -> ConsumerQueue {
        // SAFETY: the client pointer is the consumer's, alive for the call; the queue returned
        // holds a reference of its own, released on drop.
        let q = unsafe { rd::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        if q.is_null() {
            fail("rd_kafka_queue_get_consumer: no consumer queue");
        }
        ConsumerQueue(q)
    }

    /// Waits up to `timeout` for records and calls `each(partition, offset, value)` for every one
    /// of the batch: how many there were, or the first error.
    pub fn batch(
        &self,
        timeout: Duration,
        buf: &mut [*mut rd::rd_kafka_message_t],
        mut each: impl FnMut(i32, i64, &[u8]),
    ) -> Result<usize, String> {
        // SAFETY: the queue is alive; `buf` has room for `buf.len()` pointers, which librdkafka
        // fills with the first `n` of them.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(self.0, timeout.as_millis() as i32, buf.as_mut_ptr(), buf.len())
        };
        if n < 0 {
            return Err(format!("rd_kafka_consume_batch_queue: {n}"));
        }
        let mut error = None;
        for &m in &buf[..n as usize] {
            // SAFETY: each of the first `n` pointers is a message librdkafka handed over, valid
            // until rd_kafka_message_destroy, which is called once, after the last use of it
            // (`each` gets a borrow that ends before).
            unsafe {
                let msg = &*m;
                if msg.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    error.get_or_insert_with(|| format!("{:?}", msg.err));
                } else if msg.payload.is_null() {
                    each(msg.partition, msg.offset, &[]);
                } else {
                    each(msg.partition, msg.offset, std::slice::from_raw_parts(msg.payload as *const u8, msg.len));
                }
                rd::rd_kafka_message_destroy(m);
            }
        }
        error.map_or(Ok(n as usize), Err)
    }
}

impl Drop for ConsumerQueue {
    fn drop(&mut self) {
        // SAFETY: the queue came from rd_kafka_queue_get_consumer and is released once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}
