"""Examples of a lab's own code plugging into mouse_lifter_ros (closed-loop rules)."""
