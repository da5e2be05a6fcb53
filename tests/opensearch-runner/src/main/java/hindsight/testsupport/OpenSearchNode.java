package hindsight.testsupport;

import static org.codelibs.opensearch.runner.OpenSearchRunner.newConfigs;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import org.codelibs.opensearch.runner.OpenSearchRunner;

/**
 * Runs one real OpenSearch node in this JVM for Hindsight's end-to-end tests.
 *
 * <pre>
 * java -cp ... hindsight.testsupport.OpenSearchNode BASE_DIR [HTTP_PORT [TRANSPORT_PORT]]
 * </pre>
 *
 * HTTP and transport bind to 127.0.0.1 only, no security plugin, single-node discovery,
 * new indices get no replica (so a single node is green). Data and logs live under BASE_DIR.
 * Prints {@code HINDSIGHT_OPENSEARCH_READY ...} once the cluster is at least yellow, then
 * runs until SIGTERM/SIGINT, when a shutdown hook closes the node cleanly.
 */
public final class OpenSearchNode {

    public static final String READY_MARKER = "HINDSIGHT_OPENSEARCH_READY";

    private OpenSearchNode() {}

    public static void main(final String[] args) throws Exception {
        if (args.length < 1 || args.length > 3) {
            System.err.println("usage: OpenSearchNode BASE_DIR [HTTP_PORT [TRANSPORT_PORT]]");
            System.exit(2);
        }
        final Path baseDir = Paths.get(args[0]).toAbsolutePath();
        final int httpPort = args.length > 1 ? Integer.parseInt(args[1]) : 9200;
        final int transportPort = args.length > 2 ? Integer.parseInt(args[2]) : 9300;
        final String clusterName = System.getProperty("hindsight.cluster.name", "hindsight-test");
        Files.createDirectories(baseDir);

        final OpenSearchRunner runner = new OpenSearchRunner();
        final AtomicBoolean closed = new AtomicBoolean(false);
        final CountDownLatch forever = new CountDownLatch(1);
        final Runnable close = () -> {
            if (closed.compareAndSet(false, true)) {
                log("closing the node");
                try {
                    runner.close();
                    log("node closed");
                } catch (final Throwable t) {
                    log("error while closing the node: " + t);
                }
            }
        };
        Runtime.getRuntime().addShutdownHook(new Thread(close, "hindsight-opensearch-shutdown"));

        try {
            runner.onBuild((index, settings) -> {
                settings.put("http.port", String.valueOf(httpPort));
                settings.put("transport.port", String.valueOf(transportPort));
                settings.put("network.host", "127.0.0.1");
                settings.put("discovery.type", "single-node");
                // One node: replicas could never be assigned, so new indices would be yellow.
                settings.put("cluster.default_number_of_replicas", "0");
                // Test machines often have full-ish disks; never refuse shards for that.
                settings.put("cluster.routing.allocation.disk.threshold_enabled", "false");
                settings.put("action.auto_create_index", "true");
            }).build(newConfigs()
                    .clusterName(clusterName)
                    .numOfNode(1)
                    .basePath(baseDir.toString())
                    .printOnFailure());
            runner.ensureYellow();
        } catch (final Throwable t) {
            log("failed to start OpenSearch: " + t);
            t.printStackTrace();
            close.run();
            System.exit(1);
        }

        log(READY_MARKER + " version=" + org.opensearch.Version.CURRENT + " cluster=" + clusterName
                + " http=127.0.0.1:" + httpPort + " transport=127.0.0.1:" + transportPort
                + " java=" + System.getProperty("java.version") + " base=" + baseDir);
        forever.await();
    }

    private static void log(final String message) {
        System.out.println("[hindsight-opensearch] " + message);
        System.out.flush();
    }
}
