/**
 * gRPC service definitions for etcd's API, built straight from protobufjs JSON. The fleetd bundle
 * (scripts/bundle.mjs) puts this in place of @grpc/proto-loader in etcd3's connection pool:
 * proto-loader also encodes every file and message as descriptor protos for gRPC reflection, which
 * etcd3 never uses, and that was a quarter of fleetd's start-up, paid on every boot of a slow guest.
 * The methods are what proto-loader builds (test/integration/grpc-services.test.ts compares them).
 */
import protobuf from "protobufjs/light.js";

export interface MethodDefinition {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestSerialize: (value: object) => Buffer;
  requestDeserialize: (bytes: Buffer) => object;
  responseSerialize: (value: object) => Buffer;
  responseDeserialize: (bytes: Buffer) => object;
  originalName: string;
}

/** Service name (`etcdserverpb.KV`) → method name → definition, as grpc-js's loadPackageDefinition takes it. */
export type ServiceDefinitions = Record<string, Record<string, MethodDefinition>>;

/** proto-loader's (lodash's) camelCase of a method name: "HashKV" → "hashKv", "LeaseTimeToLive" → "leaseTimeToLive". */
export function methodCamelCase(name: string): string {
  const words = name.match(/[A-Z]{2,}(?=[A-Z][a-z]+[0-9]*|\b|[0-9])|[A-Z]?[a-z]+[0-9]*|[A-Z]|[0-9]+/g) ?? [];
  return words.map((w, i) => (i === 0 ? w.toLowerCase() : w.charAt(0).toUpperCase() + w.slice(1).toLowerCase())).join("");
}

function serializer(type: protobuf.Type): (value: object) => Buffer {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
    return Buffer.from(type.encode(type.fromObject(value)).finish());
  };
}

function deserializer(type: protobuf.Type, options: protobuf.IConversionOptions): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), options);
}

/** Every service in `json` (protobufjs's Root JSON), with proto-loader's conversion options. */
export function servicesFromJSON(json: protobuf.INamespace, options: protobuf.IConversionOptions): ServiceDefinitions {
  const root = protobuf.Root.fromJSON(json);
  root.resolveAll();
  const out: ServiceDefinitions = {};
  const visit = (ns: protobuf.NamespaceBase, prefix: string): void => {
    for (const obj of ns.nestedArray) {
      const name = prefix ? `${prefix}.${obj.name}` : obj.name;
      if (obj instanceof protobuf.Service) {
        const methods: Record<string, MethodDefinition> = {};
        for (const m of obj.methodsArray) {
          const req = m.resolvedRequestType;
          const res = m.resolvedResponseType;
          if (!req || !res) throw new Error(`gRPC method ${name}.${m.name} has unresolved types`);
          methods[m.name] = {
            path: `/${name}/${m.name}`,
            requestStream: !!m.requestStream,
            responseStream: !!m.responseStream,
            requestSerialize: serializer(req),
            requestDeserialize: deserializer(req, options),
            responseSerialize: serializer(res),
            responseDeserialize: deserializer(res, options),
            originalName: methodCamelCase(m.name),
          };
        }
        out[name] = methods;
      } else if (obj instanceof protobuf.Namespace && !(obj instanceof protobuf.Type)) {
        visit(obj, name);
      }
    }
  };
  visit(root, "");
  return out;
}
