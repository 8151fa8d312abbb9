import { describe, expect, it } from "vitest";
import { buildConfig, ConfigError } from "./config";
import { parseGoDuration } from "./duration";

describe("fleetd configuration", () => {
  it("uses fleet's option names with corefleet's defaults when nothing is set", () => {
    const { config } = buildConfig(undefined, {});
    expect(config.etcdServers).toEqual(["http://127.0.0.1:2379"]);
    expect(config.etcdKeyPrefix).toBe("/fleet/");
    expect(config.agentTtlSeconds).toBe(30);
    expect(config.unitsDirectory).toBe("/run/fleet/units");
    expect(config.tokenLimit).toBe(100);
    expect(config.unitManager).toBe("dbus");
  });

  it("reads the file and lets FLEET_* environment variables override it", () => {
    const file = ['etcd_servers = ["http://10.0.0.1:2379","http://10.0.0.2:2379"]', 'metadata = "region=us-east, disk = ssd"', "agent_ttl = 1m30s", "public_ip=10.0.0.9", "disable_engine = true"].join("\n");
    const { config } = buildConfig(file, { FLEET_PUBLIC_IP: "10.0.0.10", FLEET_ETCD_KEY_PREFIX: "/other" });
    expect(config.etcdServers).toEqual(["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
    expect(config.metadata).toEqual({ region: "us-east", disk: "ssd" });
    expect(config.agentTtlSeconds).toBe(90);
    expect(config.publicIp).toBe("10.0.0.10");
    expect(config.etcdKeyPrefix).toBe("/other/");
    expect(config.disableEngine).toBe(true);
  });

  it("accepts a comma-separated etcd_servers list", () => {
    expect(buildConfig("etcd_servers=http://a:1,http://b:2", {}).config.etcdServers).toEqual(["http://a:1", "http://b:2"]);
  });

  it("names the key, the value and its source when a value is bad", () => {
    expect(() => buildConfig("agent_ttl = soon", {}, "/etc/fleet/fleet.conf")).toThrow(
      new ConfigError('Invalid configuration: agent_ttl="soon" (from /etc/fleet/fleet.conf): expected a Go duration of at least 1s, e.g. 30s or 1m30s'),
    );
    expect(() => buildConfig(undefined, { FLEET_TOKEN_LIMIT: "0" })).toThrow(
      'Invalid configuration: token_limit="0" (from environment variable FLEET_TOKEN_LIMIT): expected an integer from 1 to 65535',
    );
    expect(() => buildConfig("metadata=a=b=c", {})).toThrow('metadata="a=b=c" (from fleet.conf): item "a=b=c" is not key=value');
    expect(() => buildConfig("etcd_servers=127.0.0.1:2379", {})).toThrow('endpoint "127.0.0.1:2379" is not http(s)://host:port');
  });

  it("refuses a TCP API listener without credentials", () => {
    expect(() => buildConfig("api_tcp_listen=0.0.0.0:49153", {})).toThrow("needs api_token");
    expect(buildConfig("api_tcp_listen=0.0.0.0:49153\napi_token=s3cret", {}).config.apiToken).toBe("s3cret");
  });

  it("warns about unknown and unsupported options instead of failing", () => {
    const { warnings } = buildConfig("enable_grpc=true\nbogus=1", {});
    expect(warnings).toEqual(["Ignoring configuration option enable_grpc (from fleet.conf): not supported by corefleet", "Unknown configuration option bogus in fleet.conf; ignored"]);
  });

  it("machine_loss_grace defaults to 10 s (also when empty), independent of agent_ttl, and takes a Go duration", () => {
    expect(buildConfig(undefined, {}).config.machineLossGraceSeconds).toBe(10);
    expect(buildConfig("agent_ttl=60s\nmachine_loss_grace=", {}).config.machineLossGraceSeconds).toBe(10);
    expect(buildConfig("machine_loss_grace=45s", {}).config.machineLossGraceSeconds).toBe(45);
    expect(() => buildConfig("machine_loss_grace=soon", {})).toThrow('machine_loss_grace="soon" (from fleet.conf): expected a Go duration');
  });

  it("etcd_keepalive_interval defaults to 6 s, takes 0 (no pings, for etcd proxy hosts) and refuses what etcd would refuse", () => {
    expect(buildConfig(undefined, {}).config.etcdKeepaliveIntervalSeconds).toBe(6);
    expect(buildConfig('etcd_keepalive_interval="0"', {}).config.etcdKeepaliveIntervalSeconds).toBe(0);
    expect(buildConfig("etcd_keepalive_interval=300", {}).config.etcdKeepaliveIntervalSeconds).toBe(300);
    expect(() => buildConfig("etcd_keepalive_interval=1", {})).toThrow('etcd_keepalive_interval="1" (from fleet.conf): expected 0 (no pings) or at least 5 seconds');
  });

  it("lease_renew_interval defaults to fleetd's min(agent_ttl/3, 2s) (empty), takes a Go duration, and is at most a third of agent_ttl", () => {
    expect(buildConfig(undefined, {}).config.leaseRenewIntervalMs).toBeUndefined();
    expect(buildConfig("lease_renew_interval=", {}).config.leaseRenewIntervalMs).toBeUndefined();
    expect(buildConfig("lease_renew_interval=10s", {}).config.leaseRenewIntervalMs).toBe(10_000);
    expect(buildConfig("lease_renew_interval=500ms\nagent_ttl=2s", {}).config.leaseRenewIntervalMs).toBe(500);
    expect(() => buildConfig("lease_renew_interval=soon", {})).toThrow('lease_renew_interval="soon" (from fleet.conf): expected a Go duration of at least 100ms such as 10s, or empty for min(agent_ttl/3, 2s)');
    expect(() => buildConfig("lease_renew_interval=11s", {})).toThrow(
      new ConfigError("Invalid configuration: lease_renew_interval=11s is longer than a third of agent_ttl=30s: a lease must be renewed at least 3 times per TTL; shorten it or raise agent_ttl"),
    );
  });

  it("parses Go durations", () => {
    expect(parseGoDuration("30s")).toBe(30_000);
    expect(parseGoDuration("1m30s")).toBe(90_000);
    expect(parseGoDuration("1.5h")).toBe(5_400_000);
    expect(parseGoDuration("500ms")).toBe(500);
    expect(parseGoDuration("30")).toBeUndefined();
    expect(parseGoDuration("")).toBeUndefined();
  });
});
