"""The entry point LocalStack loads (group ``localstack.lambda.runtime_executor``)."""

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin

PLUGIN_NAME = "host"


class HostRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    # LocalStack matches LAMBDA_RUNTIME_EXECUTOR against this name (not the entry-point key).
    name = PLUGIN_NAME

    def load(self, *args, **kwargs):
        # Imported lazily: LocalStack resolves every executor plugin's spec at startup,
        # but only loads the one it was asked for.
        from localstack_host_executor.executor import HostRuntimeExecutor

        return HostRuntimeExecutor
