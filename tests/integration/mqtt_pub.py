"""Publishes numbered messages with paho-mqtt (a client library none of us wrote).

usage: mqtt_pub.py PORT TOPIC FIRST COUNT QOS [--v5]
Each payload is "n=<i> paho". Retries the connection until the broker is up (it may be
restarting), and waits until every message is acknowledged (PUBACK/PUBCOMP) before exiting.
Run with /usr/bin/python3 (Debian's python3-paho-mqtt).
"""
import sys
import time

import paho.mqtt.client as mqtt


def main():
    port, topic, first, count, qos = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                                      int(sys.argv[4]), int(sys.argv[5]))
    v5 = '--v5' in sys.argv
    c = mqtt.Client(client_id='runnel-test-pub-%d' % first,
                    protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    c.max_inflight_messages_set(100)
    for _ in range(100):
        try:
            c.connect('127.0.0.1', port)
            break
        except OSError:
            time.sleep(0.1)
    c.loop_start()
    infos = [c.publish(topic, b'n=%d paho' % i, qos=qos) for i in range(first, first + count)]
    for info in infos:
        info.wait_for_publish(timeout=30)
        if not info.is_published():
            sys.exit('not acknowledged: mid %d' % info.mid)
    c.loop_stop()
    c.disconnect()


if __name__ == '__main__':
    main()
