"""Kafka through aiokafka's public API: every client's connection options, the topic
layout and each topic's size limit."""
