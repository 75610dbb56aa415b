// A Java agent that does nothing.
//
// LocalStack starts DynamoDB Local with -javaagent:<var_libs>/dynamodb-local/2/ddb-local-loader-0.1.jar.
// The real jar (downloaded by LocalStack, impossible offline) only lifts DynamoDB Local's
// 20-GSI limit; the JVM refuses to start without some valid agent jar at that path.
// start.sh compiles this class into that jar (Manifest: Premain-Class: NoopAgent).
import java.lang.instrument.Instrumentation;

public final class NoopAgent {
    public static void premain(String args, Instrumentation instrumentation) {
        // intentionally empty
    }
}
