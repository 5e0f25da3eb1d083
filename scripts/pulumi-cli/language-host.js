#!/usr/bin/env node
// Stand-in for the `pulumi-language-nodejs` plugin, written against the
// LanguageRuntime gRPC contract that ships inside @pulumi/pulumi.
//
// Why this exists: the Go module for the real language host
// (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3) is not
// served by the Go module proxy reachable from this project's machines (403 for
// every version), so it cannot be built here. The pulumi CLI itself is built
// from Go sources by scripts/pulumi-install.sh; this file lets that CLI run a
// Node.js Pulumi program (`pulumi preview/up/destroy` in a dir whose Pulumi.yaml
// says `runtime: nodejs`).
//
// It does what the real host does for the calls a local, offline deployment
// needs: Run spawns `node <@pulumi/pulumi>/cmd/run <flags> <entrypoint>` in the
// program directory, passing config through PULUMI_CONFIG and
// PULUMI_CONFIG_SECRET_KEYS. TypeScript entry points are run through the
// ts-node/typescript that @pulumi/pulumi finds (its vendored ts-node 7 plus the
// project's typescript), exactly as with the real host. Plugin discovery
// (GetRequiredPackages) reports nothing: offline operation resolves the
// providers it needs from PATH (e.g. pulumi-resource-pulumi-nodejs for dynamic
// providers). InstallDependencies, About, GetProgramDependencies, code
// generation and policy packs are not implemented (the CLI gets UNIMPLEMENTED).
//
// Invoked by the CLI as: pulumi-language-nodejs [-flags...] <engine-address>
// It prints the port it listens on as its first stdout line.
"use strict";

const path = require("path");
const fs = require("fs");
const { createRequire } = require("module");
const { spawn } = require("child_process");

const REPO_ROOT = path.resolve(__dirname, "..", "..");

// Resolve @pulumi/pulumi (and its gRPC dependency) from the repo, which is the
// copy this host was installed against.
const repoRequire = createRequire(path.join(REPO_ROOT, "package.json"));
const pulumiPkgJson = repoRequire.resolve("@pulumi/pulumi/package.json");
const pulumiDir = path.dirname(pulumiPkgJson);
const pulumiRequire = createRequire(pulumiPkgJson);
const grpc = pulumiRequire("@grpc/grpc-js");
const langproto = pulumiRequire("./proto/language_pb");
const langrpc = pulumiRequire("./proto/language_grpc_pb");
const plugproto = pulumiRequire("./proto/plugin_pb");
const pulumiVersion = require(pulumiPkgJson).version;

// Exit code with which @pulumi/pulumi/cmd/run signals "error already reported
// to the user": the host then asks the engine to bail without more output.
const EXIT_ALREADY_REPORTED = 32;

function parseArgs(argv) {
    const flags = { typescript: true, tsconfig: "", nodeargs: "", root: "", tracing: "" };
    const positional = [];
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const m = /^--?([a-zA-Z-]+)(?:=(.*))?$/.exec(a);
        if (!m) {
            positional.push(a);
            continue;
        }
        const name = m[1];
        let value = m[2];
        if (name === "typescript") {
            flags.typescript = value === undefined ? true : value !== "false";
            continue;
        }
        if (value === undefined && i + 1 < argv.length && !argv[i + 1].startsWith("-")) {
            // Go's flag package accepts "-flag value"; the engine address is the
            // last positional argument, so only consume a value for known flags.
            if (name in flags) {
                value = argv[++i];
            }
        }
        if (name in flags) {
            flags[name] = value ?? "";
        }
    }
    return { flags, engineAddress: positional[positional.length - 1] || "" };
}

const { flags, engineAddress: argEngineAddress } = parseArgs(process.argv.slice(2));
let engineAddress = argEngineAddress;

// Runtime options from Pulumi.yaml (`runtime: {name: nodejs, options: {...}}`).
function runtimeOptions(info) {
    const out = {};
    if (!info) return out;
    const opts = info.getOptions && info.getOptions();
    if (opts && opts.toJavaScript) {
        Object.assign(out, opts.toJavaScript());
    }
    return out;
}

// Find @pulumi/pulumi/cmd/run as seen from the program (its own node_modules
// first, like the real host), falling back to the repo's copy.
function resolveRunScript(programDir) {
    try {
        return createRequire(path.join(programDir, "__pulumi_program__.js")).resolve("@pulumi/pulumi/cmd/run");
    } catch (_e) {
        return path.join(pulumiDir, "cmd", "run", "index.js");
    }
}

function splitArgs(s) {
    return (s || "").split(/\s+/).filter((x) => x.length > 0);
}

const service = {
    handshake(call, callback) {
        const req = call.request;
        if (req.getEngineAddress()) engineAddress = req.getEngineAddress();
        callback(null, new langproto.LanguageHandshakeResponse());
    },

    getRequiredPlugins(_call, callback) {
        const resp = new langproto.GetRequiredPluginsResponse();
        resp.setPluginsList([]);
        callback(null, resp);
    },

    getRequiredPackages(_call, callback) {
        const resp = new langproto.GetRequiredPackagesResponse();
        resp.setPackagesList([]);
        callback(null, resp);
    },

    getPluginInfo(_call, callback) {
        const resp = new plugproto.PluginInfo();
        resp.setVersion(pulumiVersion);
        callback(null, resp);
    },

    cancel(_call, callback) {
        callback(null, new (pulumiRequire("google-protobuf/google/protobuf/empty_pb").Empty)());
    },

    run(call, callback) {
        const req = call.request;
        const info = req.getInfo();
        const opts = runtimeOptions(info);
        const programDir = (info && info.getProgramDirectory()) || req.getPwd() || process.cwd();
        const pwd = req.getPwd() || programDir;
        const entryPoint = (info && info.getEntryPoint()) || req.getProgram() || ".";
        const typescript = opts.typescript === undefined ? flags.typescript : opts.typescript !== false;
        const tsconfig = opts.tsconfig || flags.tsconfig;
        const nodeargs = splitArgs(opts.nodeargs || flags.nodeargs);

        const args = [...nodeargs, resolveRunScript(programDir)];
        const add = (k, v) => {
            if (v !== undefined && v !== null && v !== "") args.push(`--${k}`, String(v));
        };
        add("monitor", req.getMonitorAddress());
        add("engine", engineAddress);
        add("organization", req.getOrganization());
        add("project", req.getProject());
        add("root-directory", info && info.getRootDirectory());
        add("stack", req.getStack());
        add("pwd", pwd);
        if (req.getDryrun()) args.push("--dry-run");
        if (req.getParallel() > 1) add("parallel", req.getParallel());
        add("tracing", flags.tracing);
        args.push(entryPoint, ...req.getArgsList());

        const config = {};
        for (const [k, v] of req.getConfigMap().entries()) config[k] = v;
        const env = {
            ...process.env,
            PULUMI_CONFIG: JSON.stringify(config),
            PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(req.getConfigsecretkeysList() || []),
        };
        if (typescript) env.PULUMI_NODEJS_TYPESCRIPT = "true";
        if (tsconfig) env.PULUMI_NODEJS_TSCONFIG_PATH = tsconfig;

        const child = spawn(process.execPath, args, { cwd: pwd, env, stdio: ["ignore", "inherit", "inherit"] });
        const resp = new langproto.RunResponse();
        child.on("error", (err) => {
            resp.setError(`failed to start node: ${err.message}`);
            callback(null, resp);
        });
        child.on("exit", (code, signal) => {
            if (code === 0) {
                // success
            } else if (code === EXIT_ALREADY_REPORTED) {
                resp.setBail(true);
            } else if (signal) {
                resp.setError(`Program exited due to signal ${signal}`);
            } else {
                resp.setError(`Program exited with non-zero exit code: ${code}`);
            }
            callback(null, resp);
        });
    },
};

async function main() {
    if (!fs.existsSync(pulumiPkgJson)) {
        console.error("fatal: @pulumi/pulumi not found; run npm install in " + REPO_ROOT);
        process.exit(1);
    }
    const server = new grpc.Server({
        "grpc.max_receive_message_length": 400 * 1024 * 1024,
        "grpc.max_send_message_length": 400 * 1024 * 1024,
    });
    server.addService(langrpc.LanguageRuntimeService, service);
    const port = await new Promise((resolve, reject) => {
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    // The CLI reads the port from the first line of stdout.
    process.stdout.write(`${port}\n`);
}

main().catch((err) => {
    console.error(`fatal: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
});
