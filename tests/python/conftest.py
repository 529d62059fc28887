def pytest_configure(config):
    config.addinivalue_line("markers", "kernel: executes notebooks with the project's evcxr kernel")
