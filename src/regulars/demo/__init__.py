"""The demo store: a simulated shop written as real Shopify export files."""

from regulars.demo.generator import DemoConfig, DemoFiles, simulate, write_demo_files

__all__ = ["DemoConfig", "DemoFiles", "simulate", "write_demo_files"]
