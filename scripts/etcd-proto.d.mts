import type { INamespace } from "protobufjs";
export function etcd3LibDir(): string;
export function etcdProtoJSON(): INamespace;
