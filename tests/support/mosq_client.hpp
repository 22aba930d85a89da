// A libmosquitto client in the test process: a publisher that goes as fast as the broker
// lets it (no mosquitto_pub process per message, binary payloads, any topic libmosquitto
// will send), and a subscriber that keeps every message byte for byte. libmosquitto is an
// MQTT implementation independent of edgegw's own.
#pragma once

#include <gtest/gtest.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/broker.hpp"

namespace edgegw::test {

struct MosqMessage {
  std::string topic;
  std::string payload;  // bytes, not text
  bool retain = false;
  int qos = 0;
};

class MosqClient {
 public:
  // MQTT 5: a publisher keeps as many QoS 1/2 publishes in flight as the broker's Receive
  // Maximum allows (mosquitto's max_inflight_messages).
  MosqClient(const Broker& broker, const std::string& id) {
    ::mosquitto_lib_init();
    m_mosq = ::mosquitto_new(id.c_str(), true, this);
    ::mosquitto_int_option(m_mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    ::mosquitto_connect_v5_callback_set(m_mosq, [](mosquitto*, void* self, int rc, int, const mosquitto_property*) {
      static_cast<MosqClient*>(self)->note([&](MosqClient& c) { c.m_connack = rc; });
    });
    ::mosquitto_publish_v5_callback_set(m_mosq, [](mosquitto*, void* self, int, int reason, const mosquitto_property*) {
      static_cast<MosqClient*>(self)->note([&](MosqClient& c) {
        ++c.m_acked;
        if (reason >= 0x80) ++c.m_refused;
      });
    });
    ::mosquitto_subscribe_v5_callback_set(m_mosq,
                                          [](mosquitto*, void* self, int, int, const int*, const mosquitto_property*) {
                                            static_cast<MosqClient*>(self)->note([](MosqClient& c) { ++c.m_subacks; });
                                          });
    ::mosquitto_message_v5_callback_set(
        m_mosq, [](mosquitto*, void* self, const mosquitto_message* m, const mosquitto_property*) {
          static_cast<MosqClient*>(self)->note([&](MosqClient& c) {
            c.m_messages.push_back(MosqMessage{
                m->topic, std::string(static_cast<const char*>(m->payload), static_cast<std::size_t>(m->payloadlen)),
                m->retain, m->qos});
          });
        });
    const int rc = ::mosquitto_connect(m_mosq, broker.host().c_str(), broker.port(), 60);
    EXPECT_EQ(rc, MOSQ_ERR_SUCCESS) << ::mosquitto_strerror(rc);
    EXPECT_EQ(::mosquitto_loop_start(m_mosq), MOSQ_ERR_SUCCESS);
    EXPECT_TRUE(wait([](const MosqClient& c) { return c.m_connack == 0; }, std::chrono::seconds(30))) << "no CONNACK";
  }
  ~MosqClient() {
    ::mosquitto_disconnect(m_mosq);
    ::mosquitto_loop_stop(m_mosq, false);
    ::mosquitto_destroy(m_mosq);
    ::mosquitto_lib_cleanup();
  }
  MosqClient(const MosqClient&) = delete;
  MosqClient& operator=(const MosqClient&) = delete;

  // Queues one publish (libmosquitto sends it from its thread); MOSQ_ERR_SUCCESS or why not.
  int publish(const std::string& topic, const std::string& payload, int qos, bool retain = false) {
    const int rc = ::mosquitto_publish(m_mosq, nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(),
                                       qos, retain);
    if (rc == MOSQ_ERR_SUCCESS && qos > 0) {
      std::lock_guard lock(m_mutex);
      ++m_sent;
    }
    return rc;
  }
  // Waits until the broker acknowledged every QoS 1/2 publish so far.
  bool wait_acked(std::chrono::seconds timeout) {
    return wait([](const MosqClient& c) { return c.m_acked >= c.m_sent; }, timeout);
  }
  long refused() {
    std::lock_guard lock(m_mutex);
    return m_refused;
  }

  bool subscribe(const std::string& filter, int qos) {
    long before = 0;
    {
      std::lock_guard lock(m_mutex);
      before = m_subacks;
    }
    // Retain As Published: the retain flag as the publisher (edgegw) set it, also on live messages.
    if (::mosquitto_subscribe_v5(m_mosq, nullptr, filter.c_str(), qos, MQTT_SUB_OPT_RETAIN_AS_PUBLISHED, nullptr) !=
        MOSQ_ERR_SUCCESS) {
      return false;
    }
    return wait([before](const MosqClient& c) { return c.m_subacks > before; }, std::chrono::seconds(30));
  }
  // Waits until `done(messages)` (called with the lock held) or the timeout; returns a copy.
  template <typename Done>
  std::vector<MosqMessage> messages_when(Done done, std::chrono::seconds timeout) {
    wait([&](const MosqClient& c) { return done(c.m_messages); }, timeout);
    std::lock_guard lock(m_mutex);
    return m_messages;
  }
  std::vector<MosqMessage> messages() {
    std::lock_guard lock(m_mutex);
    return m_messages;
  }

 private:
  template <typename F>
  void note(F f) {
    {
      std::lock_guard lock(m_mutex);
      f(*this);
    }
    m_changed.notify_all();
  }
  template <typename Pred>
  bool wait(Pred pred, std::chrono::seconds timeout) {
    std::unique_lock lock(m_mutex);
    return m_changed.wait_for(lock, timeout, [&] { return pred(*this); });
  }

  mosquitto* m_mosq = nullptr;
  std::mutex m_mutex;
  std::condition_variable m_changed;
  int m_connack = -1;
  long m_sent = 0, m_acked = 0, m_refused = 0, m_subacks = 0;
  std::vector<MosqMessage> m_messages;
};

}  // namespace edgegw::test
