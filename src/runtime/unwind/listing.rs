//! Every thread of the program with what it waits on and its call stack: `asyncshim stacks PID` and the
//! statistics report.
