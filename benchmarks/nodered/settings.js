// Node-RED settings for the carewatch comparison (benchmarks/fall_vs_nodered.py).
//
// Run (what the benchmark does; see docs/operations.md, "Against Node-RED"):
//
//   NODE_PATH=.node/nodered/node_modules MQTT_HOST=127.0.0.1 MQTT_PORT=1883 \
//   NODERED_PORT=1880 NODERED_SQLITE=/tmp/nodered.db \
//   node .node/nodered/node_modules/node-red/red.js \
//     --settings benchmarks/nodered/settings.js --userDir /tmp/nodered-user \
//     benchmarks/nodered/flow_sqlite.json
//
// NODE_PATH lets this file find better-sqlite3, installed beside Node-RED by
// scripts/setup-nodered. The flows read MQTT_HOST and MQTT_PORT; the storing flow reads
// NODERED_SQLITE. The editor and admin API are off: the flows are files, not edited here.

module.exports = {
    uiHost: "127.0.0.1",
    uiPort: Number(process.env.NODERED_PORT || 1880),
    httpAdminRoot: false,
    httpNodeRoot: "/",
    credentialSecret: false,
    flowFilePretty: true,
    logging: {
        console: { level: "warn", metrics: false, audit: false },
    },
    // Given to function nodes as global.get("Database"): the SQLite binding the storing
    // flow uses (better-sqlite3: synchronous, one transaction per MQTT message).
    functionGlobalContext: {
        Database: require("better-sqlite3"),
    },
    functionExternalModules: false,
    exportGlobalContextKeys: false,
};
